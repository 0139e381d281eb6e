"""Checks on evidence files, shared by the staff pages and the API.

A file is accepted only if its content is one of the allowed types and its extension agrees with
that content. Names are kept as metadata only; the stored file gets a generated name.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath

import filetype
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

# extension -> the content type its content must have
ALLOWED = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".txt": "text/plain",
    ".csv": "text/csv",
}
TEXT_TYPES = {"text/plain", "text/csv"}
# Markup in a "text" file could be rendered by a browser that ignores our headers; refuse it.
MARKUP_SIGNS = (b"<html", b"<script", b"<!doctype", b"<svg", b"<body", b"<iframe", b"<?xml")
SNIFF_BYTES = 8192


class UploadRejected(ValueError):
    """The file is not accepted. The message says why, in words the uploader can act on."""


@dataclass(frozen=True)
class CheckedUpload:
    file: UploadedFile
    original_filename: str
    content_type: str


def allowed_extensions() -> str:
    return ", ".join(sorted({ext.lstrip(".").upper() for ext in ALLOWED if ext != ".jpeg"}))


def clean_filename(name: str) -> str:
    """The name as the user gave it, minus anything that could act as a path or a control code."""
    # Folders are refused outright (no "/" or "\\"), so ".." is only dangerous as the whole name.
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
        raise UploadRejected("The file name must be a plain name without folders, such as report.pdf.")
    cleaned = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if not cleaned:
        raise UploadRejected("The file name must be a plain name without folders, such as report.pdf.")
    return cleaned[:255]


def check_upload(upload: UploadedFile) -> CheckedUpload:
    limit = settings.EVIDENCE_MAX_BYTES
    if upload.size is None or upload.size == 0:
        raise UploadRejected("The selected file is empty.")
    if upload.size > limit:
        raise UploadRejected(
            f"The selected file must be smaller than {_megabytes(limit)} (it is {_megabytes(upload.size)})."
        )
    name = clean_filename(upload.name or "")
    extension = PurePosixPath(name).suffix.lower()
    expected = ALLOWED.get(extension)
    if expected is None:
        raise UploadRejected(f"The selected file must be one of: {allowed_extensions()}.")

    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    upload.seek(0)
    if expected in TEXT_TYPES:
        _check_text(upload, head, extension)
    else:
        kind = filetype.guess(head)
        if kind is None or kind.mime != expected:
            raise UploadRejected(
                f"The selected file is called {extension.upper().lstrip('.')} but its content is not; "
                f"upload a real {extension.upper().lstrip('.')} file."
            )
    return CheckedUpload(file=upload, original_filename=name, content_type=expected)


def _check_text(upload: UploadedFile, head: bytes, extension: str) -> None:
    if filetype.guess(head) is not None or b"\x00" in head:
        raise UploadRejected(f"The selected {extension.upper().lstrip('.')} file contains binary data, not text.")
    lowered = head.lower()
    if any(sign in lowered for sign in MARKUP_SIGNS):
        raise UploadRejected("The selected file contains web page markup; upload a PDF or plain text instead.")
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for chunk in upload.chunks():
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise UploadRejected("The selected text file must be saved as UTF-8.") from None
    finally:
        upload.seek(0)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{max(1, size // 1024)} KB"
