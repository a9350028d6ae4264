"""Typed HTTP client for the WeCom service-provider APIs.

Layout:
- `WeComClient` owns one `httpx.Client` and the single `_request()` that applies
  timeouts, logging, metrics and error mapping. It also hosts the three calls that
  need no token (they *mint* tokens): `get_provider_token`, `get_suite_token`,
  `get_customized_corp_token` (代开发 gettoken).
- Token-bearing calls live on per-kind facades (`client.provider(tokens)`,
  `client.suite(tokens)`, `client.corp(tokens)`). A facade only accepts a token
  source of its own kind and only exposes its kind's endpoints, so sending a suite
  token to a license API cannot be written.
- The only retry here is the one WeCom asks for: a rejected token is refreshed
  once and the call repeated once (protocol doc §9 "refresh"). Every other retry
  decision belongs to the caller (a Celery task), which sees typed errors only.

Secrets (provider/suite secrets, suite_ticket, tokens, permanent_code, auth codes)
never reach a log line or an exception message: we log endpoint names, never URLs
(the query string carries the token), scrub WeCom's errmsg of every credential we
sent, and raise our errors outside `except` blocks so no httpx exception (whose
text may hold the URL) hangs off `__context__`.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import ClassVar
from typing import Protocol
from typing import TypeVar
from typing import runtime_checkable

import httpx

from wecom.endpoints import BATCH_MAX_ITEMS
from wecom.endpoints import ENDPOINTS
from wecom.endpoints import PAGE_LIMIT_MAX
from wecom.endpoints import Endpoint
from wecom.endpoints import HttpMethod
from wecom.endpoints import TokenKind
from wecom.endpoints import endpoint
from wecom.errors import WeComError
from wecom.errors import WeComTokenInvalid
from wecom.errors import WeComTransportError
from wecom.errors import error_for
from wecom.ratelimit import CallRateLimiter
from wecom.ratelimit import WeComThrottled

__all__ = [
    "DEFAULT_BASE_URL",
    "AccessToken",
    "CorpApi",
    "OnCall",
    "PreAuthCode",
    "ProviderApi",
    "StaticToken",
    "SuiteApi",
    "Ticket",
    "TokenSource",
    "WeComClient",
    "chunked",
    "iter_pages",
]

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
# §3: every token and ticket lives 7200 s; used when a legacy body omits expires_in.
DEFAULT_EXPIRES_IN = 7200
ALL_ITEMS_FAILED = 701024  # a batch call whose every item failed (§10)

# A fixed name, older than the move out of wecom_provider/: deployments' LOGGING config
# and alerts refer to it.
logger = logging.getLogger("wecom_provider.wecom.client")

JSON = dict[str, Any]
T = TypeVar("T")
# on_call(endpoint_name, errcode, duration_s): errcode is None for transport errors.
OnCall = Callable[[str, int | None, float], None]

# Request fields whose values are credentials. Used to scrub WeCom's errmsg (which
# could echo what we sent) before it goes into a log line or an exception.
_SENSITIVE_FIELDS = frozenset(
    {
        "access_token",
        "auth_code",
        "code",
        "corpsecret",
        "permanent_code",
        "pre_auth_code",
        "provider_access_token",
        "provider_secret",
        "suite_access_token",
        "suite_secret",
        "suite_ticket",
        "user_ticket",
    }
)
# Shorter values would scrub innocent substrings; real credentials are far longer.
_SCRUB_MIN_LEN = 4
# Body keys naming the corp a call concerns, for the log line (ids, not secrets).
_CORP_FIELDS = ("auth_corpid", "corpid", "from_corpid")


# -- keep httpx quiet ---------------------------------------------------------------
# httpx logs every request at INFO with the full URL, i.e. with the token in the
# query string. Keep its loggers at WARNING, and strip query strings from anything
# the "httpx" logger formats in case a LOGGING config lowers the level again.
class _DropQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_without_query(arg) for arg in record.args)
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = _without_query(record.msg)
        return True


def _without_query(value: Any) -> Any:
    if isinstance(value, httpx.URL):
        return str(value).split("?", 1)[0]
    if isinstance(value, str) and "?" in value and "://" in value:
        return " ".join(part.split("?", 1)[0] if "://" in part else part for part in value.split())
    return value


for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)
if not any(isinstance(f, _DropQueryStrings) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_DropQueryStrings())


# -- credentials returned by WeCom ---------------------------------------------------
# repr=False on every value: these objects get logged and shown in tracebacks.
@dataclass(frozen=True, slots=True)
class AccessToken:
    """A provider, suite or corp access token and its lifetime in seconds."""

    value: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True, slots=True)
class PreAuthCode:
    """A pre_auth_code for the install link (§4.1) and its lifetime in seconds."""

    value: str = field(repr=False)
    expires_in: int


@dataclass(frozen=True, slots=True)
class Ticket:
    """A JS-SDK ticket (corp jsapi_ticket or agent_config ticket) and its lifetime."""

    value: str = field(repr=False)
    expires_in: int


# -- token sources -------------------------------------------------------------------
@runtime_checkable
class TokenSource(Protocol):
    """Where a facade gets its token. Implemented by the tenants layer (cached, locked).

    `refresh(rejected)` must force a new token only if `rejected` is still the current
    one (another worker may already have replaced it) and return the token to use
    now. Returning `rejected` itself means "nothing newer": the client then raises.
    """

    kind: TokenKind

    def get(self) -> str: ...

    def refresh(self, rejected: str) -> str: ...


@dataclass(frozen=True, slots=True)
class StaticToken:
    """A fixed token (scripts, tests). Cannot refresh, so a rejection is final."""

    kind: TokenKind
    value: str = field(repr=False)

    def get(self) -> str:
        return self.value

    def refresh(self, rejected: str) -> str:
        return self.value


# -- helpers -------------------------------------------------------------------------
def chunked(items: Iterable[T], size: int = BATCH_MAX_ITEMS) -> Iterator[list[T]]:
    """Return an iterator of lists of at most `size` items (for the ≤1000 batch APIs)."""
    if size < 1:
        raise ValueError("size must be ≥ 1")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_pages(
    fetch: Callable[[str | None], Mapping[str, Any]], items_key: str, *, endpoint: str = "page"
) -> Iterator[Any]:
    """Return an iterator over `items_key` across all pages of a cursor-paginated API.

    `fetch(cursor)` returns one page; cursor is None for the first call (§1: omit it).
    A page ends the walk when `has_more` is falsy. A repeated or missing cursor while
    `has_more` is set would loop forever, so it raises WeComTransportError instead.
    """
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        page = fetch(cursor)
        items = page.get(items_key) or []
        if not isinstance(items, list):
            raise WeComTransportError(endpoint=endpoint, errmsg=f"{items_key} is not a list")
        yield from items
        if not page.get("has_more"):
            return
        cursor = page.get("next_cursor") or None
        if not isinstance(cursor, str) or cursor in seen:
            raise WeComTransportError(
                endpoint=endpoint, errmsg="has_more set but next_cursor missing or repeated"
            )
        seen.add(cursor)


def _body(**fields: Any) -> JSON:
    """Return the request body with None fields left out (WeCom treats absent as default)."""
    return {key: value for key, value in fields.items() if value is not None}


def _check_page_limit(limit: int | None) -> None:
    if limit is not None and not 1 <= limit <= PAGE_LIMIT_MAX:
        raise ValueError(f"limit must be 1..{PAGE_LIMIT_MAX}, got {limit}")


def _check_batch(ep: Endpoint, body: Mapping[str, Any] | None) -> None:
    # Refuse before any I/O: WeCom would fail the whole call (701026), and some APIs
    # (userid_to_openuserid) block for a day after abuse. Splitting is the caller's
    # job (see chunked()), because each chunk's per-item results must be handled.
    if ep.batch_field is None or body is None or ep.batch_field not in body:
        return
    items = body[ep.batch_field]
    if isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise TypeError(f"{ep.name}: {ep.batch_field} must be a list")
    if len(items) > ep.batch_max:
        raise ValueError(
            f"{ep.name}: {len(items)} items in {ep.batch_field}, at most {ep.batch_max} "
            "per call; split with chunked()"
        )


def _secrets_in(token: str | None, *parts: Mapping[str, Any] | None) -> list[str]:
    found = [token] if token else []
    for part in parts:
        for key, value in (part or {}).items():
            if key in _SENSITIVE_FIELDS and isinstance(value, str):
                found.append(value)
    # Longest first, so a secret containing another one is replaced whole.
    return sorted({s for s in found if len(s) >= _SCRUB_MIN_LEN}, key=len, reverse=True)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _corp_of(*parts: Mapping[str, Any] | None) -> str | None:
    for part in parts:
        for key in _CORP_FIELDS:
            value = (part or {}).get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _errcode_of(body: Mapping[str, Any]) -> int | None:
    """Return the errcode (missing means 0: legacy success bodies, §1), None if malformed."""
    raw = body.get("errcode", 0)
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            return None
    return None


def _int_field(ep: Endpoint, body: Mapping[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise WeComTransportError(endpoint=ep.name, errmsg=f"response {key} is not an int")
    return value


def _str_field(ep: Endpoint, body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise WeComTransportError(endpoint=ep.name, errmsg=f"response lacks {key}")
    return value


def _uses(name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Mark a method as the typed entry point of registry endpoint `name`.

    Pure metadata: the registry test walks these marks to prove every endpoint
    is reachable through a typed method.
    """
    if name not in ENDPOINTS:
        raise KeyError(name)

    def mark(fn: Callable[..., T]) -> Callable[..., T]:
        fn.wecom_endpoint = name  # type: ignore[attr-defined]
        return fn

    return mark


# -- the client ----------------------------------------------------------------------
class WeComClient:
    """HTTP client for qyapi.weixin.qq.com (or a simulator at `base_url`).

    Thread-safe; create one per process and reuse it (it pools connections).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
        transport: httpx.BaseTransport | None = None,
        on_call: OnCall | None = None,
        limiter: CallRateLimiter | None = None,
    ) -> None:
        # Every HTTP call of this client takes a slot under the platform-wide ceiling
        # first (ratelimit.py): this is the one path to WeCom, so every call counts.
        self._limiter = limiter
        self._http = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            # WeCom never redirects an API call; a redirect is a proxy or captive
            # portal, and following it would resend the token-bearing query.
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )
        self._on_call = on_call

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WeComClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # facades ----------------------------------------------------------------------
    def provider(self, tokens: TokenSource) -> ProviderApi:
        """Return the facade for provider_access_token APIs (licenses, login, links)."""
        return ProviderApi(self, tokens)

    def suite(self, tokens: TokenSource) -> SuiteApi:
        """Return the facade for suite_access_token APIs (install, OAuth)."""
        return SuiteApi(self, tokens)

    def corp(self, tokens: TokenSource, *, corp_id: str | None = None) -> CorpApi:
        """Return the facade for one corp's access_token APIs; corp_id only labels logs."""
        return CorpApi(self, tokens, corp_id=corp_id)

    # token-free calls: they mint the tokens ----------------------------------------
    @_uses("get_provider_token")
    def get_provider_token(self, *, corpid: str, provider_secret: str) -> AccessToken:
        """Return a provider_access_token for the provider's own corpid."""
        ep = ENDPOINTS["get_provider_token"]
        body = self._request(ep, json={"corpid": corpid, "provider_secret": provider_secret})
        return AccessToken(
            _str_field(ep, body, "provider_access_token"),
            _int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    @_uses("get_suite_token")
    def get_suite_token(
        self, *, suite_id: str, suite_secret: str, suite_ticket: str
    ) -> AccessToken:
        """Return a suite_access_token; suite_id may be a 代开发 template id (dk…)."""
        ep = ENDPOINTS["get_suite_token"]
        body = self._request(
            ep,
            json={"suite_id": suite_id, "suite_secret": suite_secret, "suite_ticket": suite_ticket},
        )
        return AccessToken(
            _str_field(ep, body, "suite_access_token"),
            _int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    @_uses("gettoken")
    def get_customized_corp_token(self, *, corpid: str, corpsecret: str) -> AccessToken:
        """Return a 代开发 corp token: corpid=auth_corpid, corpsecret=its permanent_code."""
        ep = ENDPOINTS["gettoken"]
        body = self._request(ep, params={"corpid": corpid, "corpsecret": corpsecret})
        return AccessToken(
            _str_field(ep, body, "access_token"),
            _int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    # the one request path ---------------------------------------------------------
    def _request(
        self,
        ep: Endpoint,
        *,
        token: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        corp_id: str | None = None,
        binary: bool = False,
    ) -> Any:
        """Return the decoded body of one HTTP call (bytes if `binary` and an image came).

        Raises WeComTransportError or WeComApiError; never an httpx/json exception.
        """
        if (ep.token_param is None) != (token is None):
            raise TypeError(f"{ep.name}: token given iff the endpoint needs one")
        if binary and not ep.binary_ok:
            raise TypeError(f"{ep.name} never answers with bytes")
        if json is not None and ep.method is HttpMethod.GET:
            raise TypeError(f"{ep.name} is a GET: pass params, not json")
        query: dict[str, Any] = dict(ep.fixed_params)
        query.update({k: v for k, v in (params or {}).items() if v is not None})
        if ep.token_param is not None:
            query[ep.token_param] = token
        content: bytes | None = None
        headers: dict[str, str] = {}
        if ep.method is HttpMethod.POST:
            # WeCom wants UTF-8 JSON; ensure_ascii=False keeps Chinese names readable
            # to WeCom. Encoding errors (a caller bug) raise TypeError before I/O.
            content = jsonlib.dumps(
                dict(json or {}), ensure_ascii=False, separators=(",", ":")
            ).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        secrets = _secrets_in(token, params, json)
        corp = corp_id or _corp_of(json, params)

        if self._limiter is not None:
            try:
                self._limiter.acquire(ep.name)
            except WeComThrottled as throttled:
                self._record(ep, None, throttled, 0.0, corp)
                raise
        started = time.monotonic()
        response: httpx.Response | None = None
        failure: WeComError | None = None
        # Only the class name of an httpx exception is kept: its text can contain
        # the URL, and the URL contains the token. The error is raised after this
        # block so the httpx exception is not even attached as __context__.
        try:
            response = self._http.request(
                ep.method.value, ep.path, params=query, content=content, headers=headers
            )
        except (httpx.ConnectTimeout, httpx.ConnectError, httpx.PoolTimeout) as exc:
            failure = WeComTransportError(
                endpoint=ep.name, errmsg=type(exc).__name__, request_sent=False
            )
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            failure = WeComTransportError(endpoint=ep.name, errmsg=type(exc).__name__)
        duration = time.monotonic() - started

        result: Any = None
        if response is not None:
            result, failure = self._decode(ep, response, secrets, binary)
        errcode = 0 if failure is None else failure.errcode  # None for transport errors
        self._record(ep, errcode, failure, duration, corp)
        if failure is not None:
            raise failure
        return result

    def _decode(
        self, ep: Endpoint, response: httpx.Response, secrets: Sequence[str], binary: bool
    ) -> tuple[Any, WeComError | None]:
        """Return (body, None) on success or (None, the error to raise)."""
        status = response.status_code
        if status != 200:
            # WeCom reports errors as HTTP 200 + errcode; anything else is a gateway.
            return None, WeComTransportError(
                endpoint=ep.name, errmsg=f"HTTP {status}", status_code=status
            )
        if binary and response.headers.get("content-type", "").startswith("image/"):
            return response.content, None
        try:
            body = jsonlib.loads(response.content)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
            return None, WeComTransportError(
                endpoint=ep.name, errmsg="response is not JSON", status_code=status
            )
        if not isinstance(body, dict):
            return None, WeComTransportError(
                endpoint=ep.name, errmsg="response is not a JSON object", status_code=status
            )
        errcode = _errcode_of(body)
        if errcode is None:
            return None, WeComTransportError(
                endpoint=ep.name, errmsg="malformed errcode", status_code=status
            )
        if errcode == ALL_ITEMS_FAILED and ep.item_results and body.get(ep.item_results):
            # Not an error of the call: each item says why it failed (Endpoint.item_results).
            return body, None
        if errcode != 0:
            errmsg = body.get("errmsg")
            errmsg = _scrub(errmsg if isinstance(errmsg, str) else "", secrets)
            return None, error_for(errcode, errmsg, ep.name)
        if binary:
            return None, WeComTransportError(endpoint=ep.name, errmsg="expected an image")
        return body, None

    def _record(
        self,
        ep: Endpoint,
        errcode: int | None,
        failure: WeComError | None,
        duration: float,
        corp: str | None,
    ) -> None:
        # One line per HTTP call. Endpoint name only: the URL would carry the token.
        ms = round(duration * 1000)
        extra = {
            "wecom_endpoint": ep.name,
            "wecom_errcode": errcode,
            "wecom_duration_ms": ms,
            "wecom_corp_id": corp,
        }
        if failure is None:
            logger.info(
                "wecom %s errcode=0 duration_ms=%d corp=%s", ep.name, ms, corp or "-", extra=extra
            )
        elif errcode is None:
            logger.warning(
                "wecom %s transport_error=%s duration_ms=%d corp=%s",
                ep.name,
                failure.errmsg,
                ms,
                corp or "-",
                extra=extra,
            )
        else:
            logger.warning(
                "wecom %s errcode=%d errmsg=%r duration_ms=%d corp=%s",
                ep.name,
                errcode,
                failure.errmsg,
                ms,
                corp or "-",
                extra=extra,
            )
        if self._on_call is not None:
            try:
                self._on_call(ep.name, errcode, duration)
            except Exception:
                # Metrics must never break a WeCom call.
                logger.warning("wecom on_call hook failed for %s", ep.name, exc_info=True)


# -- facades -------------------------------------------------------------------------
class _Api:
    """Shared plumbing of the per-token-kind facades."""

    kind: ClassVar[TokenKind]

    def __init__(
        self, client: WeComClient, tokens: TokenSource, *, corp_id: str | None = None
    ) -> None:
        if getattr(tokens, "kind", None) != self.kind:
            raise TypeError(
                f"{type(self).__name__} needs a {self.kind} token source, "
                f"got {getattr(tokens, 'kind', None)!r}"
            )
        self._client = client
        self._tokens = tokens
        self._corp_id = corp_id

    def call(
        self,
        endpoint_name: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        """Return the decoded body of any registry endpoint of this facade's kind.

        For endpoints without a typed method's conveniences. Raises KeyError for an
        unknown name and TypeError (before any I/O) for another kind's endpoint.
        """
        ep = endpoint(endpoint_name)
        if ep.token is not self.kind:
            raise TypeError(
                f"{ep.name} needs a {ep.token} token; this facade holds a {self.kind} token"
            )
        return self._send(ep, json=json, params=params)

    def _call(
        self,
        name: str,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        return self._send(ENDPOINTS[name], json=json, params=params)

    def _send(
        self,
        ep: Endpoint,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        binary: bool = False,
    ) -> Any:
        # Belt and braces for the typed methods; call() checked already.
        if ep.token is not self.kind:
            raise TypeError(f"{ep.name} is not a {self.kind} endpoint")
        _check_batch(ep, json)
        token = self._tokens.get()
        kwargs: dict[str, Any] = {
            "params": params,
            "json": json,
            "corp_id": self._corp_id,
            "binary": binary,
        }
        try:
            return self._client._request(ep, token=token, **kwargs)
        except WeComTokenInvalid as exc:
            rejected = exc
        # §9 "refresh": evict this token, get a new one, retry once. WeCom refused
        # the call at the token check, so repeating a write is safe here.
        fresh = self._tokens.refresh(rejected=token)
        if not fresh or fresh == token:
            raise rejected  # nothing newer (StaticToken, or refresh declined)
        logger.info(
            "wecom %s token rejected (errcode=%s); retrying once", ep.name, rejected.errcode
        )
        return self._client._request(ep, token=fresh, **kwargs)

    def _pages(
        self, name: str, body: Mapping[str, Any], *, limit: int | None
    ) -> Iterator[dict[str, Any]]:
        # Validation happens now, not on the first next(): this is not a generator.
        ep = ENDPOINTS[name]
        _check_page_limit(limit)
        if ep.page_items is None:
            raise TypeError(f"{name} is not paginated")

        def fetch(cursor: str | None) -> JSON:
            return self._send(ep, json=_body(**body, limit=limit, cursor=cursor))

        return iter_pages(fetch, ep.page_items, endpoint=name)


class SuiteApi(_Api):
    """APIs authorised by a suite_access_token: install flow, corp tokens, OAuth."""

    kind = TokenKind.SUITE

    @_uses("get_pre_auth_code")
    def get_pre_auth_code(self) -> PreAuthCode:
        """Return a pre_auth_code for the install link (valid `expires_in`, ~1200 s)."""
        ep = ENDPOINTS["get_pre_auth_code"]
        body = self._send(ep)
        return PreAuthCode(
            _str_field(ep, body, "pre_auth_code"), _int_field(ep, body, "expires_in", 1200)
        )

    @_uses("set_session_info")
    def set_session_info(
        self, *, pre_auth_code: str, auth_type: int = 0, appids: Sequence[int] | None = None
    ) -> JSON:
        """Return WeCom's answer to configuring an install; auth_type 1 = test install."""
        if auth_type not in (0, 1):
            raise ValueError("auth_type is 0 (正式授权) or 1 (测试授权)")
        session_info: JSON = {"auth_type": auth_type}
        if appids is not None:  # legacy multi-app suites only; empty means all apps
            session_info["appid"] = list(appids)
        return self._call(
            "set_session_info", json={"pre_auth_code": pre_auth_code, "session_info": session_info}
        )

    @_uses("get_permanent_code")
    def get_permanent_code(self, *, auth_code: str) -> JSON:
        """Return the v2 answer: permanent_code, auth_corp_info, auth_user_info, state."""
        return self._call("get_permanent_code", json={"auth_code": auth_code})

    @_uses("get_permanent_code_v1")
    def get_permanent_code_v1(self, *, auth_code: str) -> JSON:
        """Return the legacy v1 answer (adds corp token and auth_info; slow)."""
        return self._call("get_permanent_code_v1", json={"auth_code": auth_code})

    @_uses("get_auth_info")
    def get_auth_info(self, *, auth_corpid: str, permanent_code: str) -> JSON:
        """Return the v2 auth info (auth_corp_info, auth_info.agent[], dealer_corp_info)."""
        return self._call(
            "get_auth_info", json={"auth_corpid": auth_corpid, "permanent_code": permanent_code}
        )

    @_uses("get_auth_info_v1")
    def get_auth_info_v1(self, *, auth_corpid: str, permanent_code: str) -> JSON:
        """Return the legacy v1 auth info (adds corp_wxqrcode, edition_info)."""
        return self._call(
            "get_auth_info_v1", json={"auth_corpid": auth_corpid, "permanent_code": permanent_code}
        )

    @_uses("get_corp_token")
    def get_corp_token(self, *, auth_corpid: str, permanent_code: str) -> AccessToken:
        """Return a third-party app's corp token (代开发 apps use get_customized_corp_token)."""
        ep = ENDPOINTS["get_corp_token"]
        body = self._send(ep, json={"auth_corpid": auth_corpid, "permanent_code": permanent_code})
        return AccessToken(
            _str_field(ep, body, "access_token"),
            _int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN),
        )

    @_uses("get_admin_list_legacy")
    def get_admin_list_legacy(self, *, auth_corpid: str, agentid: int) -> JSON:
        """Return the legacy admin list (service/get_admin_list, "已不再维护")."""
        return self._call(
            "get_admin_list_legacy", json={"auth_corpid": auth_corpid, "agentid": agentid}
        )

    @_uses("get_app_qrcode")
    def get_app_qrcode(
        self,
        *,
        suite_id: str,
        appid: int | None = None,
        state: str | None = None,
        style: int | None = None,
    ) -> JSON:
        """Return {"qrcode": <url>, ...}: the install QR of a published app (result_type=2)."""
        return self._call(
            "get_app_qrcode",
            json=_body(suite_id=suite_id, appid=appid, state=state, style=style, result_type=2),
        )

    def get_app_qrcode_png(
        self,
        *,
        suite_id: str,
        appid: int | None = None,
        state: str | None = None,
        style: int | None = None,
    ) -> bytes:
        """Return the install QR code as PNG bytes (result_type=1)."""
        body = _body(suite_id=suite_id, appid=appid, state=state, style=style, result_type=1)
        return self._send(ENDPOINTS["get_app_qrcode"], json=body, binary=True)

    @_uses("getuserinfo3rd")
    def getuserinfo3rd(self, *, code: str) -> JSON:
        """Return the OAuth user (corpid, userid, open_userid, user_ticket; or openid)."""
        return self._call("getuserinfo3rd", params={"code": code})

    @_uses("getuserinfo3rd_legacy")
    def getuserinfo3rd_legacy(self, *, code: str) -> JSON:
        """Return the OAuth user from the legacy path (capitalised keys: CorpId, UserId)."""
        return self._call("getuserinfo3rd_legacy", params={"code": code})

    @_uses("getuserdetail3rd")
    def getuserdetail3rd(self, *, user_ticket: str) -> JSON:
        """Return the member's sensitive info (gender is a string) for a user_ticket."""
        return self._call("getuserdetail3rd", json={"user_ticket": user_ticket})

    @_uses("getuserdetail3rd_legacy")
    def getuserdetail3rd_legacy(self, *, user_ticket: str) -> JSON:
        """Return getuserdetail3rd's answer from the legacy path."""
        return self._call("getuserdetail3rd_legacy", json={"user_ticket": user_ticket})


class CorpApi(_Api):
    """APIs authorised by one corp's access_token (third-party or 代开发)."""

    kind = TokenKind.CORP

    @_uses("get_admin_list")
    def get_admin_list(self) -> JSON:
        """Return {"admin": [{"userid", "auth_type"}]} for the token's app."""
        return self._call("get_admin_list", json={})

    @_uses("get_permissions")
    def get_permissions(self) -> JSON:
        """Return {"app_permissions": [...]}: the real grants of a 代开发 app."""
        return self._call("get_permissions", json={})

    @_uses("userid_to_openuserid")
    def userid_to_openuserid(self, *, userid_list: Sequence[str]) -> JSON:
        """Return open_userid_list and invalid_userid_list for ≤1000 userids."""
        return self._call("userid_to_openuserid", json={"userid_list": list(userid_list)})

    @_uses("get_jsapi_ticket")
    def get_jsapi_ticket(self) -> Ticket:
        """Return the corp jsapi_ticket for wx.config (400 fetches/h per corp: cache it)."""
        return self._ticket("get_jsapi_ticket")

    @_uses("get_agent_jsapi_ticket")
    def get_agent_jsapi_ticket(self) -> Ticket:
        """Return the app ticket for wx.agentConfig (100 fetches/h per app: cache it)."""
        return self._ticket("get_agent_jsapi_ticket")

    @_uses("getcallbackip")
    def getcallbackip(self) -> JSON:
        """Return {"ip_list": [...]}: the source IPs of WeCom callbacks."""
        return self._call("getcallbackip")

    def _ticket(self, name: str) -> Ticket:
        ep = ENDPOINTS[name]
        body = self._send(ep)
        return Ticket(
            _str_field(ep, body, "ticket"), _int_field(ep, body, "expires_in", DEFAULT_EXPIRES_IN)
        )


class ProviderApi(_Api):
    """APIs authorised by the provider_access_token: web login, links, licenses (§6).

    License methods are flat on this facade (`provider.create_new_order(...)`), named
    exactly as the WeCom API. List arguments are named and shaped as the wire field.
    """

    kind = TokenKind.PROVIDER

    # §5 provider APIs ---------------------------------------------------------------
    @_uses("get_login_info")
    def get_login_info(self, *, auth_code: str) -> JSON:
        """Return usertype, user_info, corp_info (and agent/auth_info for admins)."""
        return self._call("get_login_info", json={"auth_code": auth_code})

    @_uses("get_customized_auth_url")
    def get_customized_auth_url(
        self, *, templateid_list: Sequence[str], state: str | None = None
    ) -> JSON:
        """Return {"qrcode_url", "expires_in"}: a 代开发 auth link (≤9 templates)."""
        return self._call(
            "get_customized_auth_url",
            json=_body(state=state, templateid_list=list(templateid_list)),
        )

    @_uses("get_register_code")
    def get_register_code(
        self,
        *,
        template_id: str,
        corp_name: str | None = None,
        admin_name: str | None = None,
        admin_mobile: str | None = None,
        state: str | None = None,
        follow_user: str | None = None,
    ) -> JSON:
        """Return {"register_code", "expires_in"} for a promotion QR."""
        return self._call(
            "get_register_code",
            json=_body(
                template_id=template_id,
                corp_name=corp_name,
                admin_name=admin_name,
                admin_mobile=admin_mobile,
                state=state,
                follow_user=follow_user,
            ),
        )

    @_uses("corpid_to_opencorpid")
    def corpid_to_opencorpid(self, *, corpid: str) -> JSON:
        """Return {"open_corpid"} for a plaintext corpid (48001 without authorization)."""
        return self._call("corpid_to_opencorpid", json={"corpid": corpid})

    # §6.3 orders --------------------------------------------------------------------
    @_uses("create_new_order")
    def create_new_order(
        self,
        *,
        corpid: str,
        buyer_userid: str,
        base_count: int = 0,
        external_contact_count: int = 0,
        months: int = 0,
        days: int = 0,
    ) -> JSON:
        """Return {"order_id"} of a new purchase order (duration = months*31 + days)."""
        duration: JSON = {"months": months}
        if days:  # test corps buy exactly 1 month and must not send days
            duration["days"] = days
        return self._call(
            "create_new_order",
            json={
                "corpid": corpid,
                "buyer_userid": buyer_userid,
                "account_count": {
                    "base_count": base_count,
                    "external_contact_count": external_contact_count,
                },
                "account_duration": duration,
            },
        )

    @_uses("create_renew_order_job")
    def create_renew_order_job(
        self, *, corpid: str, account_list: Sequence[Mapping[str, Any]], jobid: str | None = None
    ) -> JSON:
        """Return {"jobid", "invalid_account_list"}; pass jobid again to append (≤1000/call)."""
        return self._call(
            "create_renew_order_job",
            json=_body(corpid=corpid, account_list=[dict(a) for a in account_list], jobid=jobid),
        )

    @_uses("submit_order_job")
    def submit_order_job(
        self,
        *,
        jobid: str,
        buyer_userid: str,
        months: int | None = None,
        new_expire_time: int | None = None,
    ) -> JSON:
        """Return {"order_id"} of the renewal; give exactly one of months / new_expire_time."""
        if (months is None) == (new_expire_time is None):
            raise ValueError("give exactly one of months or new_expire_time")
        return self._call(
            "submit_order_job",
            json={
                "jobid": jobid,
                "buyer_userid": buyer_userid,
                "account_duration": _body(months=months, new_expire_time=new_expire_time),
            },
        )

    @_uses("list_order")
    def list_order(
        self,
        *,
        corpid: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> JSON:
        """Return one page of orders: {"order_list", "next_cursor", "has_more"}."""
        _check_time_range(start_time, end_time)
        _check_page_limit(limit)
        return self._call(
            "list_order",
            json=_body(
                corpid=corpid, start_time=start_time, end_time=end_time, cursor=cursor, limit=limit
            ),
        )

    def list_order_all(
        self,
        *,
        corpid: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT_MAX,
    ) -> Iterator[JSON]:
        """Return an iterator over every order_list item across pages."""
        _check_time_range(start_time, end_time)
        return self._pages(
            "list_order",
            _body(corpid=corpid, start_time=start_time, end_time=end_time),
            limit=limit,
        )

    @_uses("get_order")
    def get_order(self, *, order_id: str) -> JSON:
        """Return {"order": {...}} (note: order.corpid, account_duration.months)."""
        return self._call("get_order", json={"order_id": order_id})

    @_uses("list_order_account")
    def list_order_account(
        self, *, order_id: str, cursor: str | None = None, limit: int | None = None
    ) -> JSON:
        """Return one page of an order's accounts (codes, or userids for renewals)."""
        _check_page_limit(limit)
        return self._call(
            "list_order_account", json=_body(order_id=order_id, cursor=cursor, limit=limit)
        )

    def list_order_account_all(
        self, *, order_id: str, limit: int = PAGE_LIMIT_MAX
    ) -> Iterator[JSON]:
        """Return an iterator over every account_list item of an order."""
        return self._pages("list_order_account", {"order_id": order_id}, limit=limit)

    @_uses("cancel_order")
    def cancel_order(self, *, order_id: str, corpid: str | None = None) -> JSON:
        """Return {} on success; only unpaid orders (corpid omitted only for multi-corp)."""
        return self._call("cancel_order", json=_body(corpid=corpid, order_id=order_id))

    @_uses("create_new_order_job")
    def create_new_order_job(
        self, *, buy_list: Sequence[Mapping[str, Any]], jobid: str | None = None
    ) -> JSON:
        """Return {"jobid", "invalid_list"} of a multi-corp purchase job (≤10 per call)."""
        return self._call(
            "create_new_order_job", json=_body(buy_list=[dict(b) for b in buy_list], jobid=jobid)
        )

    @_uses("submit_new_order_job")
    def submit_new_order_job(self, *, jobid: str, buyer_userid: str) -> JSON:
        """Return {} once the multi-corp job is submitted."""
        return self._call(
            "submit_new_order_job", json={"jobid": jobid, "buyer_userid": buyer_userid}
        )

    @_uses("new_order_job_result")
    def new_order_job_result(self, *, jobid: str) -> JSON:
        """Return {"status" (1 done, 2 running, 3 failed), "order_id", "fail_list"}."""
        return self._call("new_order_job_result", json={"jobid": jobid})

    @_uses("get_union_order")
    def get_union_order(
        self, *, order_id: str, cursor: str | None = None, limit: int | None = None
    ) -> JSON:
        """Return one page of a multi-corp order: {"order", "buy_list", cursor fields}."""
        _check_page_limit(limit)
        return self._call(
            "get_union_order", json=_body(order_id=order_id, cursor=cursor, limit=limit)
        )

    def get_union_order_all(self, *, order_id: str, limit: int = PAGE_LIMIT_MAX) -> Iterator[JSON]:
        """Return an iterator over every buy_list item (sub-orders) of a multi-corp order."""
        return self._pages("get_union_order", {"order_id": order_id}, limit=limit)

    @_uses("submit_pay_job")
    def submit_pay_job(self, *, payer_userid: str, order_id: str) -> JSON:
        """Return {"jobid"} of a payment from the recharge balance."""
        return self._call(
            "submit_pay_job", json={"payer_userid": payer_userid, "order_id": order_id}
        )

    @_uses("pay_job_result")
    def pay_job_result(self, *, jobid: str) -> JSON:
        """Return {"status", "pay_job_result": {"errcode", ...}}; inner errcode = payment."""
        return self._call("pay_job_result", json={"jobid": jobid})

    @_uses("get_account_balance")
    def get_account_balance(self) -> JSON:
        """Return {"balance"} of the recharge account, in 分."""
        return self._call("get_account_balance")

    # §6.4 accounts ------------------------------------------------------------------
    @_uses("active_account")
    def active_account(self, *, corpid: str, active_code: str, userid: str) -> JSON:
        """Return {} once active_code is bound to userid."""
        return self._call(
            "active_account", json={"active_code": active_code, "corpid": corpid, "userid": userid}
        )

    @_uses("batch_active_account")
    def batch_active_account(
        self, *, corpid: str, active_list: Sequence[Mapping[str, Any]]
    ) -> JSON:
        """Return {"active_result": [...]} with a per-item errcode (≤1000 items)."""
        return self._call(
            "batch_active_account",
            json={"corpid": corpid, "active_list": [dict(a) for a in active_list]},
        )

    @_uses("active_account_by_type")
    def active_account_by_type(self, *, corpid: str, userid: str, account_type: int) -> JSON:
        """Return {}; WeCom picks the unbound code of that type expiring soonest."""
        return self._call(
            "active_account_by_type",
            json={"type": account_type, "corpid": corpid, "userid": userid},
        )

    @_uses("get_active_info_by_code")
    def get_active_info_by_code(self, *, corpid: str, active_code: str) -> JSON:
        """Return {"active_info": {...}} for one activation code."""
        return self._call(
            "get_active_info_by_code", json={"corpid": corpid, "active_code": active_code}
        )

    @_uses("batch_get_active_info_by_code")
    def batch_get_active_info_by_code(
        self, *, corpid: str, active_code_list: Sequence[str]
    ) -> JSON:
        """Return active_info_list and invalid_active_code_list for ≤1000 codes."""
        return self._call(
            "batch_get_active_info_by_code",
            json={"corpid": corpid, "active_code_list": list(active_code_list)},
        )

    @_uses("list_actived_account")
    def list_actived_account(
        self, *, corpid: str, cursor: str | None = None, limit: int | None = None
    ) -> JSON:
        """Return one page of a corp's activated accounts (expired ones included)."""
        _check_page_limit(limit)
        return self._call(
            "list_actived_account", json=_body(corpid=corpid, cursor=cursor, limit=limit)
        )

    def list_actived_account_all(
        self, *, corpid: str, limit: int = PAGE_LIMIT_MAX
    ) -> Iterator[JSON]:
        """Return an iterator over every activated account of a corp."""
        return self._pages("list_actived_account", {"corpid": corpid}, limit=limit)

    @_uses("get_active_info_by_user")
    def get_active_info_by_user(self, *, corpid: str, userid: str) -> JSON:
        """Return {"active_status", "active_info_list"} for one member."""
        return self._call("get_active_info_by_user", json={"corpid": corpid, "userid": userid})

    @_uses("batch_transfer_license")
    def batch_transfer_license(
        self, *, corpid: str, transfer_list: Sequence[Mapping[str, Any]]
    ) -> JSON:
        """Return {"transfer_result": [...]} with a per-item errcode (≤1000 items)."""
        return self._call(
            "batch_transfer_license",
            json={"corpid": corpid, "transfer_list": [dict(t) for t in transfer_list]},
        )

    @_uses("batch_share_active_code")
    def batch_share_active_code(
        self,
        *,
        from_corpid: str,
        to_corpid: str,
        share_list: Sequence[Mapping[str, Any]],
        corp_link_type: int | None = None,
    ) -> JSON:
        """Return {"share_result": [...]} listing failures only (≤1000 items)."""
        return self._call(
            "batch_share_active_code",
            json=_body(
                from_corpid=from_corpid,
                to_corpid=to_corpid,
                share_list=[dict(s) for s in share_list],
                corp_link_type=corp_link_type,
            ),
        )

    @_uses("get_app_license_info")
    def get_app_license_info(self, *, corpid: str, suite_id: str, appid: int | None = None) -> JSON:
        """Return license_status, trail_info (sic) and license_check_time."""
        return self._call(
            "get_app_license_info", json=_body(corpid=corpid, suite_id=suite_id, appid=appid)
        )

    @_uses("set_auto_active_status")
    def set_auto_active_status(self, *, corpid: str, auto_active_status: int) -> JSON:
        """Return {} once auto-activation is switched (0 off, 1 on)."""
        return self._call(
            "set_auto_active_status",
            json={"corpid": corpid, "auto_active_status": auto_active_status},
        )

    @_uses("get_auto_active_status")
    def get_auto_active_status(self, *, corpid: str) -> JSON:
        """Return {"auto_active_status"} (0 off, 1 on)."""
        return self._call("get_auto_active_status", json={"corpid": corpid})


def _check_time_range(start_time: int | None, end_time: int | None) -> None:
    # §6.3: list_order's creation-time filter comes as a pair or not at all.
    if (start_time is None) != (end_time is None):
        raise ValueError("give both start_time and end_time, or neither")
