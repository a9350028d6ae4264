"""The one path of every WeCom call: timeouts, logging, metrics and error mapping.

``Transport`` owns one ``httpx.Client`` and the single ``_request()``. Secrets
(provider/suite secrets, suite_ticket, tokens, permanent_code, auth codes) never reach
a log line or an exception message: we log endpoint names, never URLs (the query string
carries the token), scrub WeCom's errmsg of every credential we sent, and raise our
errors outside ``except`` blocks so no httpx exception (whose text may hold the URL)
hangs off ``__context__``. The only retry is the facades' (wecom/facade.py).
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Self

import httpx

from wecom.endpoints import Endpoint
from wecom.endpoints import HttpMethod
from wecom.errors import WeComError
from wecom.errors import WeComTransportError
from wecom.errors import error_for
from wecom.ratelimit import CallRateLimiter
from wecom.ratelimit import WeComThrottled

DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com"
ALL_ITEMS_FAILED = 701024  # a batch call whose every item failed (§10)

# A fixed name, older than the move out of wecom_provider/: deployments' LOGGING config
# and alerts refer to it.
logger = logging.getLogger("wecom_provider.wecom.client")

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


class Transport:
    """HTTP transport to qyapi.weixin.qq.com (or a simulator at ``base_url``).

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

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
