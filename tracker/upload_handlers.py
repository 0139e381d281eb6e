"""Keep each upload's file name exactly as the client sent it.

Django's multipart parser strips folders from upload names (``../../x.pdf`` arrives as ``x.pdf``)
and drops parts named ``..`` altogether. That is safe, but it hides the attempt: the staff pages
want to refuse such a name with a message instead of silently storing a renamed file. This
handler runs the standard parser itself, noting every raw name on ``request.raw_upload_names``.
"""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser


class _RecordingParser(MultiPartParser):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.raw_names: list[str] = []

    def sanitize_file_name(self, file_name: str) -> str | None:
        self.raw_names.append(file_name)
        return super().sanitize_file_name(file_name)


class RawFilenameUploadHandler(FileUploadHandler):
    """First in ``FILE_UPLOAD_HANDLERS``; the handlers after it store the data as usual."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        request = self.request
        if request is None or getattr(request, "_raw_upload_parsing", False):
            return None  # the nested parse below: let it proceed normally
        request._raw_upload_parsing = True
        parser = _RecordingParser(META, input_data, request.upload_handlers, encoding)
        try:
            return parser.parse()
        finally:
            request.raw_upload_names = parser.raw_names
            request._raw_upload_parsing = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        return raw_data  # pass every chunk on to the storing handlers

    def file_complete(self, file_size: int) -> None:
        return None
