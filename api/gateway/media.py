"""Media through the gateway: uploads spooled to disk, downloads streamed, never in memory.

Upload (``POST …/wecom/media/upload?type=image|voice|video|file``, multipart with one
file in the ``media`` field, as WeCom takes it):

- the Content-Length is checked first: more than WeCom's limit for the type plus a
  little multipart framing answers 413 before a byte is read;
- Django's MultiPartParser writes the file part to a temporary file on disk
  (TemporaryFileUploadHandler only: the in-memory handler is not installed, so not even
  a small file is held whole in memory); its exact size is then checked against the
  limit (413), and nothing has been sent to WeCom yet;
- the file is sent to WeCom from disk in chunks (httpx's multipart encoder), under a
  fresh boundary with a sanitised filename; the temporary file goes with the request.

Download (``media/get`` and any other binary answer): WeCom's bytes are streamed to the
product chunk by chunk, with WeCom's Content-Type, Content-Length and
Content-Disposition; more than MAX_DOWNLOAD_BYTES aborts the stream.
"""

from __future__ import annotations

import re

from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http import HttpRequest
from django.http import StreamingHttpResponse
from django.http.multipartparser import MultiPartParserError

from api.exceptions import ApiError
from wecom import gateway as wg

UPLOAD_PATH = "media/upload"
# Multipart framing around the file (boundaries, part headers): generous, still small.
MULTIPART_SLACK = 16 * 1024
_FILENAME = re.compile(r"[^\x00-\x1f\x7f\"\\/]{1,128}")


def too_large(message: str) -> ApiError:
    return ApiError(status_code=413, code="body_too_large", message=message)


def content_length(request: HttpRequest) -> int:
    """Return the request's Content-Length (411 without one: bodies are never chunked)."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    if not raw.isdigit():
        raise ApiError(
            status_code=411, code="length_required", message="Send a Content-Length header."
        )
    return int(raw)


def read_upload(request: HttpRequest, media_type: str) -> wg.Upload:
    """Return the uploaded ``media`` file, spooled to disk and within WeCom's limit."""
    limit = wg.MEDIA_LIMITS[media_type]
    if request.content_type != "multipart/form-data":
        raise ApiError(
            status_code=415,
            code="unsupported_media_type",
            message="media/upload takes multipart/form-data with the file in 'media'.",
        )
    if content_length(request) > limit + MULTIPART_SLACK:
        raise too_large(f"A {media_type} may have at most {limit} bytes.")
    request.upload_handlers = [TemporaryFileUploadHandler(request)]
    try:
        files = request.FILES
    except (MultiPartParserError, SuspiciousOperation, ValueError, OSError) as exc:
        # SuspiciousOperation: RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent;
        # OSError: UnreadablePostError (the client went away mid-body).
        raise ApiError(
            status_code=400, code="invalid_multipart", message="The multipart body is malformed."
        ) from exc
    parts = files.getlist("media")
    if len(parts) != 1 or len(files) != 1:
        raise ApiError(
            status_code=400,
            code="invalid_multipart",
            message="Send exactly one file, in the 'media' field.",
        )
    upload = parts[0]
    if upload.size > limit:
        raise too_large(f"A {media_type} may have at most {limit} bytes.")
    if not _FILENAME.fullmatch(upload.name or ""):
        raise ApiError(
            status_code=400, code="invalid_filename", message="The file name is not acceptable."
        )
    return wg.Upload(
        file=upload.file,
        filename=upload.name,
        content_type=upload.content_type or "application/octet-stream",
        size=upload.size,
    )


def binary_response(answer: wg.Answer) -> StreamingHttpResponse:
    """Return WeCom's binary answer streamed to the product (and closed at its end)."""
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > wg.MAX_DOWNLOAD_BYTES:
        answer.close()
        raise ApiError(
            status_code=502,
            code="wecom_answer_too_large",
            message=f"WeCom's answer is larger than {wg.MAX_DOWNLOAD_BYTES} bytes.",
        )
    response = StreamingHttpResponse(
        answer.iter_bytes(), content_type=answer.content_type or "application/octet-stream"
    )
    for name in ("content-length", "content-disposition"):
        if name in answer.headers:
            response[name] = answer.headers[name]
    response["X-Wecom-Errcode"] = "0"
    return response
