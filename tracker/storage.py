"""Private storage for evidence files: never under a public URL."""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.deconstruct import deconstructible


@deconstructible
class EvidenceStorage(FileSystemStorage):
    """Files live under ``settings.EVIDENCE_ROOT``, read at use so tests can move it.

    ``base_url`` is None on purpose: ``.url`` raises, so no template can link a file directly;
    downloads go through the permission-checked view.
    """

    def __init__(self) -> None:
        super().__init__(base_url=None)

    @property
    def base_location(self):  # type: ignore[override]
        return settings.EVIDENCE_ROOT

    @property
    def location(self):  # type: ignore[override]
        import os

        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("Evidence files have no public URL; use the download view.")


@deconstructible
class ExportStorage(EvidenceStorage):
    """Files made by the worker (large Excel exports, board-pack PDFs): private like evidence, in
    ``EVIDENCE_ROOT/exports``, served only by the job's download view."""

    @property
    def base_location(self):  # type: ignore[override]
        import os

        return os.path.join(settings.EVIDENCE_ROOT, "exports")

    def url(self, name):
        raise ValueError("Export files have no public URL; use the job's download view.")


@deconstructible
class ImportStorage(EvidenceStorage):
    """Uploaded import files waiting for the worker: private like evidence, in ``EVIDENCE_ROOT/imports``,
    deleted once the job has read them, and never served to anyone."""

    @property
    def base_location(self):  # type: ignore[override]
        import os

        return os.path.join(settings.EVIDENCE_ROOT, "imports")

    def url(self, name):
        raise ValueError("Import files have no URL.")
