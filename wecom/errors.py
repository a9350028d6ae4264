"""Typed errors for WeCom API calls.

Every failure of a WeCom call surfaces as a `WeComError`; callers never see
httpx or json exceptions. The class says what to do next (protocol doc §9):

    WeComError
    ├── WeComTransportError        timeout, connection, non-200, unreadable body (errcode None)
    └── WeComApiError              WeCom answered with errcode != 0
        ├── WeComTokenInvalid      40014 40082 42001 42009: refresh the token, retry once
        ├── WeComPreAuthCodeInvalid 40077 42007: fetch a new pre_auth_code
        ├── WeComSuiteTicketInvalid 40085: wait for the next suite_ticket push
        ├── WeComRateLimited       45009 45033 45036 701134: back off, lower concurrency
        ├── WeComBusy              -1 6000 45035 90304 ...: transient, retry with jitter
        ├── WeComCorpGone          40084 48004 48006 50003 301007 2000002: tenant is gone
        └── WeComPermanentError    everything else: fix input/config/flow, no retry

Messages carry the endpoint *name*, the errcode and WeCom's errmsg, never a
token, secret or code: the client scrubs errmsg of the values it sent before
building the error, and the URL (whose query string holds the token) is never
part of an error.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = [
    "BUSY_ERRCODES",
    "CORP_GONE_ERRCODES",
    "ERRMSG_MAX_CHARS",
    "PRE_AUTH_CODE_ERRCODES",
    "RATE_LIMITED_ERRCODES",
    "SUITE_TICKET_ERRCODES",
    "TOKEN_INVALID_ERRCODES",
    "ErrorKind",
    "WeComApiError",
    "WeComBusy",
    "WeComCorpGone",
    "WeComError",
    "WeComPermanentError",
    "WeComPreAuthCodeInvalid",
    "WeComRateLimited",
    "WeComSuiteTicketInvalid",
    "WeComTokenInvalid",
    "WeComTransportError",
    "error_for",
]

# errmsg is WeCom's text plus a hint and the caller IP (~150 chars). Anything much
# longer is not a normal errmsg (an echoed body, a proxy page), so cut it: the
# message ends up in logs and error trackers.
ERRMSG_MAX_CHARS = 300


class ErrorKind(StrEnum):
    """The handling label of protocol doc §9, plus `transport` and `ticket`."""

    TRANSPORT = "transport"  # no usable answer from WeCom; the request may or may not have run
    RETRY = "retry"  # transient on WeCom's side; retry with jitter, ≤3 tries
    BACK_OFF = "back_off"  # rate/concurrency limit; wait out the window
    REFRESH = "refresh"  # a credential (token, pre_auth_code) must be fetched again
    TICKET = "ticket"  # suite_ticket unknown/expired; only WeCom's next push fixes it
    CORP_GONE = "corp_gone"  # tenant dissolved, banned or de-authorized; stop refreshing
    PERMANENT = "permanent"  # fix the input, config or flow


# Protocol doc §9 "refresh" label. 40082's errmsg covers provider tokens too, and the
# expired-provider-token errcode is undocumented (§12.6), so all four mean "this token".
TOKEN_INVALID_ERRCODES = frozenset({40014, 40082, 42001, 42009})
# Also "refresh" in §9, but of the pre_auth_code, not of the suite token: refreshing the
# token would not help, so these must not trigger the client's token retry.
PRE_AUTH_CODE_ERRCODES = frozenset({40077, 42007})
SUITE_TICKET_ERRCODES = frozenset({40085})
RATE_LIMITED_ERRCODES = frozenset({45009, 45033, 45036, 701134})
BUSY_ERRCODES = frozenset(
    {-1, 6000, 45035, 90304, 2000111, 2000141, 701022, 701033, 701081, 701085, 701142}
)
CORP_GONE_ERRCODES = frozenset({40084, 48004, 48006, 50003, 301007, 2000002})


def _clip(text: str) -> str:
    if len(text) <= ERRMSG_MAX_CHARS:
        return text
    return text[: ERRMSG_MAX_CHARS - 1] + "…"


class WeComError(Exception):
    """Base of every error raised by the WeCom client."""

    kind: ErrorKind = ErrorKind.PERMANENT

    def __init__(self, *, endpoint: str, errcode: int | None, errmsg: str) -> None:
        self.endpoint = endpoint
        self.errcode = errcode
        self.errmsg = _clip(str(errmsg))
        super().__init__(self.endpoint, self.errcode, self.errmsg)

    @property
    def retryable(self) -> bool:
        """True when the same call, unchanged, may succeed later (after a pause)."""
        return self.kind in (ErrorKind.TRANSPORT, ErrorKind.RETRY, ErrorKind.BACK_OFF)

    def __str__(self) -> str:
        return f"{self.endpoint}: errcode={self.errcode} errmsg={self.errmsg!r}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={self.endpoint!r}, "
            f"errcode={self.errcode!r}, errmsg={self.errmsg!r})"
        )

    # Exceptions pickle through `args`; our __init__ is keyword-only, so rebuild
    # explicitly (Celery sends exceptions across processes).
    def __reduce__(self) -> tuple[Callable[..., WeComError], tuple[type[WeComError], dict]]:
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[WeComError], state: dict) -> WeComError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, state.get("endpoint"), state.get("errcode"), state.get("errmsg"))
    exc.__dict__.update(state)
    return exc


class WeComTransportError(WeComError):
    """No usable answer: timeout, connection failure, HTTP status != 200, unreadable body.

    `errcode` is None. `request_sent` is False only when the request certainly never
    reached WeCom (connect failure/timeout); otherwise a write (create_new_order,
    submit_pay_job) may have taken effect, so re-read before repeating it.
    """

    kind = ErrorKind.TRANSPORT

    def __init__(
        self,
        *,
        endpoint: str,
        errmsg: str,
        status_code: int | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(endpoint=endpoint, errcode=None, errmsg=errmsg)
        self.status_code = status_code
        self.request_sent = request_sent

    def __str__(self) -> str:
        status = f" status={self.status_code}" if self.status_code is not None else ""
        return f"{self.endpoint}: transport error{status}: {self.errmsg}"


class WeComApiError(WeComError):
    """WeCom answered with errcode != 0. Never branch on `errmsg` (WeCom rewords it)."""

    errcode: int


class WeComTokenInvalid(WeComApiError):
    """The token in the query string was rejected (invalid, expired or of the wrong kind)."""

    kind = ErrorKind.REFRESH


class WeComPreAuthCodeInvalid(WeComApiError):
    """The pre_auth_code is unknown or expired: fetch a new one with get_pre_auth_code."""

    kind = ErrorKind.REFRESH


class WeComSuiteTicketInvalid(WeComApiError):
    """get_suite_token was given an unknown/expired suite_ticket.

    A new suite token cannot fix this; only the next suite_ticket push (every 10 min)
    or a manual re-push from the console can.
    """

    kind = ErrorKind.TICKET


class WeComRateLimited(WeComApiError):
    """A rate or concurrency limit hit; 45009 blocks for the whole window exceeded."""

    kind = ErrorKind.BACK_OFF


class WeComBusy(WeComApiError):
    """Transient failure on WeCom's side (system busy, write conflict, codes generating)."""

    kind = ErrorKind.RETRY


class WeComCorpGone(WeComApiError):
    """The authorizing corp is dissolved, banned, or no longer authorizes the app."""

    kind = ErrorKind.CORP_GONE


class WeComPermanentError(WeComApiError):
    """Any other errcode: retrying the same request cannot help."""

    kind = ErrorKind.PERMANENT


_FAMILIES: tuple[tuple[frozenset[int], type[WeComApiError]], ...] = (
    (TOKEN_INVALID_ERRCODES, WeComTokenInvalid),
    (PRE_AUTH_CODE_ERRCODES, WeComPreAuthCodeInvalid),
    (SUITE_TICKET_ERRCODES, WeComSuiteTicketInvalid),
    (RATE_LIMITED_ERRCODES, WeComRateLimited),
    (BUSY_ERRCODES, WeComBusy),
    (CORP_GONE_ERRCODES, WeComCorpGone),
)


def error_for(errcode: int, errmsg: str, endpoint: str) -> WeComApiError:
    """Return the typed error for a non-zero errcode (not raised: the caller raises it)."""
    for codes, cls in _FAMILIES:
        if errcode in codes:
            return cls(endpoint=endpoint, errcode=errcode, errmsg=errmsg)
    return WeComPermanentError(endpoint=endpoint, errcode=errcode, errmsg=errmsg)
