"""Request bodies of uploads, capped before Django reads them.

Django parses a multipart body as soon as anything touches `request.POST` or
`request.FILES` (the CSRF check does), streaming a large file to a temporary file on
disk; a view that checks the file's size afterwards has already received all of it.
So an upload view refuses a declared length over the cap before anything reads the
body, and reads with `CappedUploadHandler`, which stops at the cap a body that
declared less than it sends. (Django itself never reads past Content-Length, and
reads nothing when it is absent.)
"""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest

from connector.inputs import whole_number_or_none

# Room for the multipart headers and the form's other fields around the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def declared_body_length(request: HttpRequest) -> int:
    """The body's Content-Length; 0 when absent or not a number, as Django reads it."""
    return whole_number_or_none(request.META.get("CONTENT_LENGTH"), maximum=2**63 - 1) or 0


class CappedUploadHandler(FileUploadHandler):
    """Passes each file on to Django's handlers until it exceeds `max_file_bytes`,
    then stops reading the body (`stopped` tells the view)."""

    def __init__(self, request: HttpRequest, *, max_file_bytes: int) -> None:
        super().__init__(request)
        self.max_file_bytes = max_file_bytes
        self.stopped = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.max_file_bytes:
            self.stopped = True
            # connection_reset: do not read the rest of the body either.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file


def cap_uploads(request: HttpRequest, *, max_file_bytes: int) -> CappedUploadHandler:
    """Install the cap; call before anything reads `request.POST` or `request.FILES`."""
    handler = CappedUploadHandler(request, max_file_bytes=max_file_bytes)
    request.upload_handlers.insert(0, handler)
    return handler
