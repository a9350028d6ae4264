"""Temporary media: media/upload (multipart) and media/get (the bytes back).

- upload: ``?type=image|voice|video|file`` and a multipart ``media`` part; WeCom's
  limits (image 10 MB, voice 2 MB, video 10 MB, file 20 MB, every file more than 5
  bytes). Wrong type 40004, no media part 41005, too large or small: 40009 image,
  40010 voice, 40011 video, 40006 file. A media_id lives 3 days and belongs to the corp.
- get: the stored bytes with Content-Type and Content-Disposition; an unknown,
  expired or another corp's media_id answers 40007 (JSON, as WeCom does).
"""

from __future__ import annotations

import secrets
from typing import Any

from sandbox import directory
from sandbox.api import Call
from sandbox.api import Raw
from sandbox.api import route
from sandbox.api_auth import token_auth
from sandbox.credentials import CORP
from sandbox.errors import ApiError

MB = 1024 * 1024
LIMITS = {"image": 10 * MB, "voice": 2 * MB, "video": 10 * MB, "file": 20 * MB}
SIZE_ERRCODES = {"image": 40009, "voice": 40010, "video": 40011, "file": 40006}
MIN_BYTES = 6  # "所有文件size必须大于5个字节"
# The whole multipart body the simulator reads for one upload.
UPLOAD_MAX_BODY = 21 * MB


def _param(header: str, name: str) -> str | None:
    for piece in header.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == name:
            return value.strip().strip('"')
    return None


def parse_multipart(raw: bytes, content_type: str) -> dict[str, tuple[str, str, bytes]]:
    """Return {field name: (filename, content type, data)} of a multipart/form-data body."""
    boundary = _param(content_type, "boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise ApiError(41005, "a multipart/form-data body with a boundary is expected")
    parts: dict[str, tuple[str, str, bytes]] = {}
    for chunk in raw.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ApiError(41005, "malformed multipart part")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _param(disposition, "name")
        if name:
            filename = _param(disposition, "filename") or name
            kind = headers.get("content-type", "application/octet-stream")
            parts[name] = (filename, kind, data.removesuffix(b"\r\n"))
    return parts


@route("media/upload", "/cgi-bin/media/upload", token=CORP, max_body=UPLOAD_MAX_BODY)
def media_upload(call: Call) -> dict[str, Any]:
    media_type = call.query.get("type", "")
    if media_type not in LIMITS:
        raise ApiError(40004, "type is image, voice, video or file")
    corp, _ = token_auth(call)
    part = parse_multipart(call.raw, call.content_type).get("media")
    if part is None:
        raise ApiError(41005, "the media part is missing")
    filename, kind, data = part
    if not MIN_BYTES <= len(data) <= LIMITS[media_type]:
        raise ApiError(SIZE_ERRCODES[media_type], f"{len(data)} bytes for a {media_type}")
    media = directory.Media(
        media_id=f"3{secrets.token_urlsafe(48)}",
        corpid=corp.corpid,
        type=media_type,
        filename=filename,
        content_type=kind,
        data=data,
        created_at=call.now(),
    )
    call.state.corp_data.media[media.media_id] = media
    return {"type": media_type, "media_id": media.media_id, "created_at": str(int(call.now()))}


@route("media/get", "/cgi-bin/media/get", method="GET", token=CORP)
def media_get(call: Call) -> Raw:
    media_id = call.text("media_id", source=call.query)
    corp, _ = token_auth(call)
    media = call.state.corp_data.media.get(media_id)
    if (
        media is None
        or media.corpid != corp.corpid
        or media.created_at + directory.MEDIA_TTL <= call.now()
    ):
        raise ApiError(40007, "invalid media_id")
    disposition = f'attachment; filename="{media.filename.replace(chr(34), "")}"'
    return Raw(media.data, media.content_type, {"Content-Disposition": disposition})
