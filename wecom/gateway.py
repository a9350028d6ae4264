"""Pass-through transport for the platform's WeCom API gateway (no Django).

Products call ``/cgi-bin/<path>`` of a tenant's corp through the platform; this module
holds what is WeCom protocol about that, so the Django side only adds policy:

- ``validate_path``: the one gate every product-supplied path goes through before
  anything else happens. A WeCom API path is a few ``[A-Za-z0-9_]`` segments; anything
  else (``..``, percent signs left over from double encoding, ``:``, ``//``, CR/LF,
  spaces) is refused, so the path can only ever name ``/cgi-bin/<segments>`` on the
  configured WeCom host. Suite- and provider-token families (``service/*``,
  ``license/*``) and the token-minting ``gettoken`` are never reachable: the gateway
  injects a corp token, nothing else.
- ``Forwarder``: one pooled ``httpx.Client`` per process, redirects never followed (a
  redirect would resend the token-bearing query elsewhere). It returns WeCom's answer
  as bytes, untouched except that our own token, should WeCom ever echo it, is masked.
  Errors are ``WeComTransportError`` built outside ``except`` blocks, naming the path
  and the httpx exception class only (never the URL: its query carries the token).
- The retry rules (protocol §9): which errcodes mean "refresh the token and retry
  once", which mean "system busy, retry ≤ 3 times", which open a breaker, and which
  calls are safe to repeat after a transport error.

Imports: stdlib and httpx only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import BinaryIO

import httpx

from wecom.errors import WeComTransportError

__all__ = [
    "BREAKER_ERRCODES",
    "MEDIA_LIMITS",
    "SYSTEM_BUSY",
    "TOKEN_ERRCODES",
    "Answer",
    "Forwarder",
    "PathRefused",
    "Upload",
    "errcode_of",
    "path_label",
    "repeatable",
    "validate_path",
]

# §9 "refresh" for the token in access_token= (the official SDK's set): refresh once,
# retry once. With a corp token only 40014/42001 occur in practice.
TOKEN_ERRCODES = frozenset({40014, 42001, 42007, 42009})
# §9 "retry": 系统繁忙, "建议重试次数不超过3次".
SYSTEM_BUSY = -1
MAX_SYSTEM_RETRIES = 3
# §10: WeCom blocks the key for the window exceeded (45009) or refuses concurrency (45033).
BREAKER_ERRCODES = frozenset({45009, 45033})

# WeCom's upload limits per media type (bytes).
MEDIA_LIMITS: Mapping[str, int] = {
    "image": 10 * 1024 * 1024,
    "voice": 2 * 1024 * 1024,
    "video": 10 * 1024 * 1024,
    "file": 20 * 1024 * 1024,
}
# The largest binary answer streamed back (media/get of a file).
MAX_DOWNLOAD_BYTES = max(MEDIA_LIMITS.values())

_SEGMENT = re.compile(r"[A-Za-z0-9_]{1,64}")
MAX_PATH_CHARS = 200
MAX_SEGMENTS = 8
# Families a corp token must never be sent to, whatever a client's allowlist says:
# provider/suite-token APIs and the token endpoints themselves.
DENIED_PREFIXES = ("service/", "license/")
DENIED_PATHS = frozenset({"gettoken", "service", "license"})
# Query parameters carrying a token: a caller's value is dropped (the gateway injects
# the tenant's corp token; nobody else's token travels through it).
TOKEN_QUERY_PARAMS = frozenset({"access_token", "suite_access_token", "provider_access_token"})

# POST APIs that only read: safe to send again after a transport error. Every GET is.
SAFE_POSTS = frozenset(
    {
        "user/list_id",
        "batch/userid_to_openuserid",
        "externalcontact/batch/get_by_user",
        "externalcontact/groupchat/list",
        "externalcontact/groupchat/get",
        "externalcontact/get_corp_tag_list",
        "externalcontact/list_contact_way",
        "externalcontact/get_contact_way",
        "user/convert_to_openid",
        "user/convert_to_userid",
        "agent/get_admin_list",
        "agent/get_permissions",
    }
)

# Paths named in metrics; any other is counted as "other" (a client could otherwise
# mint unbounded label values with made-up paths its allowlist pattern matches).
KNOWN_PATHS = frozenset(
    {
        "user/get",
        "user/list_id",
        "user/simplelist",
        "user/list",
        "department/list",
        "department/simplelist",
        "tag/list",
        "tag/get",
        "batch/syncuser",
        "batch/replaceuser",
        "batch/replaceparty",
        "batch/getresult",
        "batch/userid_to_openuserid",
        "externalcontact/list",
        "externalcontact/get",
        "externalcontact/batch/get_by_user",
        "externalcontact/add_contact_way",
        "externalcontact/send_welcome_msg",
        "externalcontact/get_follow_user_list",
        "message/send",
        "media/upload",
        "media/get",
        "get_jsapi_ticket",
        "ticket/get",
        "agent/get",
        "agent/get_admin_list",
        "agent/get_permissions",
        "getcallbackip",
    }
)


class PathRefused(ValueError):
    """The path is not a WeCom corp API path the gateway may call (``reason`` says why)."""

    def __init__(self, reason: str, *, denied: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.denied = denied  # a well-formed path of a family the gateway never calls


def validate_path(raw: str) -> str:
    """Return ``raw`` if it is a safe corp API path under /cgi-bin/, else raise PathRefused.

    ``raw`` is the path after ``…/wecom/`` as the web server decoded it once.
    """
    if not raw or len(raw) > MAX_PATH_CHARS:
        raise PathRefused(f"a WeCom path has 1 to {MAX_PATH_CHARS} characters")
    segments = raw.split("/")
    if len(segments) > MAX_SEGMENTS or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise PathRefused(
            "a WeCom path is segments of letters, digits and '_' separated by single '/' "
            "(no '..', '%', ':', empty segment, trailing '/' or control character)"
        )
    if raw in DENIED_PATHS or raw.startswith(DENIED_PREFIXES):
        raise PathRefused(
            "suite, provider and token APIs are not reachable through the gateway", denied=True
        )
    return raw


def path_label(path: str) -> str:
    """Return the metrics label of a validated path (bounded cardinality)."""
    return path if path in KNOWN_PATHS else "other"


def repeatable(method: str, path: str) -> bool:
    """Return whether the call may be sent again after a transport error (it only reads)."""
    return method == "GET" or path in SAFE_POSTS


def outbound_params(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return the caller's query parameters without any token parameter."""
    return [(k, v) for k, v in pairs if k.lower() not in TOKEN_QUERY_PARAMS]


def errcode_of(body: bytes) -> int | None:
    """Return the errcode of a JSON answer (absent: 0), None when it is not a JSON object."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    raw = data.get("errcode", 0)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("application/json", "text/json", "text/plain", "")


@dataclass
class Upload:
    """A media file to send as WeCom's multipart ``media`` field (read from ``file``)."""

    file: BinaryIO
    filename: str
    content_type: str
    size: int


@dataclass
class Answer:
    """WeCom's answer: JSON bytes (``body``) or an open binary stream (``stream``)."""

    status: int
    content_type: str
    body: bytes = b""
    errcode: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: httpx.Response | None = field(default=None, repr=False)

    @property
    def binary(self) -> bool:
        return self.stream is not None

    def iter_bytes(self, *, limit: int = MAX_DOWNLOAD_BYTES) -> Iterator[bytes]:
        """Yield the binary body; raise (after closing) once it exceeds ``limit`` bytes."""
        if self.stream is None:
            return
        sent = 0
        try:
            for chunk in self.stream.iter_bytes(64 * 1024):
                sent += len(chunk)
                if sent > limit:
                    raise WeComTransportError(endpoint="media", errmsg="download over the limit")
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


# Headers of a binary answer passed on to the product.
_PASSED_HEADERS = ("content-type", "content-length", "content-disposition")


class Forwarder:
    """Sends one product call to WeCom with the corp token; thread-safe, one per process."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        max_connections: int = 64,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str,
        params: Sequence[tuple[str, str]] = (),
        json_body: bytes | None = None,
        upload: Upload | None = None,
        stream_binary: bool = False,
    ) -> Answer:
        """Call ``/cgi-bin/<path>`` once; return WeCom's answer.

        Raises WeComTransportError (``request_sent`` False only when the request
        certainly never left: connect errors) for no answer at all. With
        ``stream_binary`` a non-JSON 200 answer is returned open (``Answer.stream``);
        the caller must iterate or close it.
        """
        query = [*outbound_params(params), ("access_token", token)]
        request = self._build(method, f"/cgi-bin/{path}", query, json_body, upload)
        response: httpx.Response | None = None
        failure: WeComTransportError | None = None
        try:
            response = self._http.send(request, stream=True)
        except (httpx.ConnectTimeout, httpx.ConnectError, httpx.PoolTimeout) as exc:
            failure = WeComTransportError(
                endpoint=path, errmsg=type(exc).__name__, request_sent=False
            )
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            failure = WeComTransportError(endpoint=path, errmsg=type(exc).__name__)
        if failure is not None or response is None:
            raise failure or WeComTransportError(endpoint=path, errmsg="no answer")
        return self._answer(path, response, token, stream_binary=stream_binary)

    def _build(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        json_body: bytes | None,
        upload: Upload | None,
    ) -> httpx.Request:
        params = tuple(query)  # httpx's params: a tuple of pairs (a list is invariant)
        if upload is not None:
            files = {"media": (upload.filename, upload.file, upload.content_type)}
            return self._http.build_request(method, path, params=params, files=files)
        if json_body is not None:
            headers = {"Content-Type": "application/json; charset=utf-8"}
            return self._http.build_request(
                method, path, params=params, content=json_body, headers=headers
            )
        return self._http.build_request(method, path, params=params)

    def _answer(
        self, path: str, response: httpx.Response, token: str, *, stream_binary: bool
    ) -> Answer:
        content_type = response.headers.get("content-type", "")
        headers = {k: response.headers[k] for k in _PASSED_HEADERS if k in response.headers}
        if "content-encoding" in response.headers:
            headers.pop("content-length", None)  # we pass the decoded bytes on
        if response.status_code == 200 and stream_binary and not _is_json(content_type):
            return Answer(200, content_type, headers=headers, errcode=0, stream=response)
        failure: WeComTransportError | None = None
        body = b""
        try:
            # JSON answers are small; a huge one is not WeCom's (cap it, answer 502).
            body = _read_capped(response, 8 * 1024 * 1024)
        except (httpx.HTTPError, httpx.StreamError, OSError, ValueError) as exc:
            failure = WeComTransportError(endpoint=path, errmsg=type(exc).__name__)
        finally:
            response.close()
        if failure is not None:
            raise failure
        if token and token.encode() in body:
            # WeCom never echoes the token; should it ever, it does not leave the platform.
            body = body.replace(token.encode(), b"***")
        errcode = errcode_of(body) if response.status_code == 200 else None
        return Answer(response.status_code, content_type, body, errcode, headers)


def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ValueError("answer too large")
        chunks.append(chunk)
    return b"".join(chunks)
