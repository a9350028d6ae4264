"""The WeCom API surface: route registry, the per-call context, request validation.

Handlers live in api_auth.py, api_authorized.py, api_license.py, api_accounts.py,
app_orders.py and the gateway's corp APIs (api_corp.py, api_external.py, api_media.py),
and register themselves with @route. A handler gets a Call, returns the success body without
errcode/errmsg (the server adds them) or raises ApiError. Field helpers give WeCom's
parameter errors: missing → the field's own "missing" errcode (41008, 41021 …) or 40063,
wrong type → 40058 (§1 Malformed input).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sandbox.credentials import CORP
from sandbox.credentials import PROVIDER
from sandbox.credentials import SUITE
from sandbox.errors import ApiError
from sandbox.models import Token

PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX = 500, 1000
BATCH_MAX = 1000

# Token kind -> the query parameter it normally travels in (§2).
TOKEN_PARAMS = {
    PROVIDER: "provider_access_token",
    SUITE: "suite_access_token",
    CORP: "access_token",
}


@dataclass(frozen=True)
class ApiRoute:
    name: str  # the registry name the platform's client uses (wecom/endpoints.py)
    method: str
    path: str
    token: str | None  # provider | suite | corp | None
    token_param: str | None
    handler: Callable[[Call], Any]
    # "omit": success body has no errcode (get_provider_token); "optional": errcode:0 is
    # sent but may be dropped when settings.randomize_legacy_errcode is on (§11 item 4).
    legacy: str | None = None
    # Largest request body accepted (None: the server's default; media uploads are larger).
    max_body: int | None = None


ROUTES: dict[str, ApiRoute] = {}


def route(
    name: str,
    path: str,
    *,
    method: str = "POST",
    token: str | None = None,
    token_param: str | None = None,
    legacy: str | None = None,
    max_body: int | None = None,
):
    """Register the decorated function as the handler of `path`."""

    def register(fn: Callable[[Call], Any]) -> Callable[[Call], Any]:
        if path in ROUTES:
            raise ValueError(f"duplicate route {path}")
        param = token_param or (TOKEN_PARAMS[token] if token else None)
        ROUTES[path] = ApiRoute(name, method, path, token, param, fn, legacy, max_body)
        return fn

    return register


@dataclass
class Raw:
    """A non-JSON answer (get_app_qrcode result_type=1 returns PNG bytes)."""

    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    state: Any
    route: ApiRoute
    query: dict[str, str]
    body: dict[str, Any]
    client_ip: str
    token: Token | None = None
    base_url: str = ""
    # The undecoded body and its Content-Type (multipart uploads; JSON is in `body`).
    raw: bytes = b""
    content_type: str = ""

    def now(self) -> float:
        return self.state.now()

    def ts(self) -> int:
        return self.state.ts()

    # ----- body fields ---------------------------------------------------------------

    def _get(self, name: str, source: dict[str, Any] | None) -> Any:
        return (self.body if source is None else source).get(name)

    def text(
        self,
        name: str,
        *,
        missing: int = 40063,
        required: bool = True,
        source: dict[str, Any] | None = None,
    ) -> str:
        value = self._get(name, source)
        if value is None or value == "":
            if required:
                raise ApiError(missing, f"{name} missing")
            return ""
        if not isinstance(value, str):
            raise ApiError(40058, f"{name} must be a string")
        return value

    def integer(
        self,
        name: str,
        *,
        missing: int = 40063,
        required: bool = True,
        default: int | None = None,
        source: dict[str, Any] | None = None,
    ) -> int | None:
        value = self._get(name, source)
        if value is None:
            if required:
                raise ApiError(missing, f"{name} missing")
            return default
        # bool is an int in Python but not in JSON: true is a mistyped field.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(40058, f"{name} must be an integer")
        return value

    def items(
        self,
        name: str,
        *,
        missing: int = 40063,
        required: bool = True,
        max_items: int | None = None,
        too_many: int = 40058,
        source: dict[str, Any] | None = None,
    ) -> list[Any]:
        value = self._get(name, source)
        if value is None:
            if required:
                raise ApiError(missing, f"{name} missing")
            return []
        if not isinstance(value, list):
            raise ApiError(40058, f"{name} must be a list")
        if max_items is not None and len(value) > max_items:
            raise ApiError(too_many, f"{name} has more than {max_items} items")
        return value

    def obj(
        self,
        name: str,
        *,
        missing: int = 40063,
        required: bool = True,
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        value = self._get(name, source)
        if value is None:
            if required:
                raise ApiError(missing, f"{name} missing")
            return {}
        if not isinstance(value, dict):
            raise ApiError(40058, f"{name} must be an object")
        return value


def strings(values: list[Any], name: str) -> list[str]:
    """Return values if all are non-empty strings, else raise 40058."""
    if not all(isinstance(v, str) and v for v in values):
        raise ApiError(40058, f"{name} must hold non-empty strings")
    return values


def objects(values: list[Any], name: str) -> list[dict[str, Any]]:
    if not all(isinstance(v, dict) for v in values):
        raise ApiError(40058, f"{name} must hold objects")
    return values


# ----- cursor pagination (§1 Pagination) ---------------------------------------------


def _encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        got_kind, offset = text.split(":")
        if got_kind != kind:
            raise ValueError(kind)
        return int(offset)
    except ValueError:
        raise ApiError(40058, "invalid cursor") from None


def paginate(call: Call, items: list[Any], kind: str) -> tuple[list[Any], dict[str, Any]]:
    """Return (this page, {next_cursor, has_more}) from `cursor` and `limit` in the body."""
    limit = call.integer("limit", required=False, default=PAGE_LIMIT_DEFAULT)
    if not 1 <= limit <= PAGE_LIMIT_MAX:
        raise ApiError(40058, f"limit must be 1..{PAGE_LIMIT_MAX}")
    cursor = call.text("cursor", required=False)
    start = _decode_cursor(kind, cursor) if cursor else 0
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, {
        "next_cursor": _encode_cursor(kind, start + limit) if more else "",
        "has_more": int(more),
    }
