"""Credentials WeCom hands out, and where a facade gets the token it sends."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Protocol
from typing import runtime_checkable

from wecom.endpoints import TokenKind

# §3: every token and ticket lives 7200 s; used when a legacy body omits expires_in.
DEFAULT_EXPIRES_IN = 7200


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
