"""Tokens, suite tickets and the token-error table (§3, §11 items 1–5)."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox import ids
from sandbox.errors import ApiError
from sandbox.models import SuiteTicket
from sandbox.models import Token

PROVIDER, SUITE, CORP = "provider", "suite", "corp"


@dataclass(frozen=True)
class TokenErrors:
    missing: int
    invalid: int  # unknown, garbled, revoked, or a valid token of another kind
    expired: int


# §11 item 3: the errcode depends on the query parameter the token travels in.
ERRORS_BY_PARAM = {
    "access_token": TokenErrors(missing=41001, invalid=40014, expired=42001),
    "suite_access_token": TokenErrors(missing=41022, invalid=40082, expired=42009),
    "provider_access_token": TokenErrors(missing=41001, invalid=40082, expired=40082),
}


def issue_token(state, kind: str, subject: str, *, suite_id: str = "", corpid: str = ""):
    """Return (token, expires_in): the current token for subject, or a new one.

    WeCom hands out the same token while it is valid (§3). By default expires_in is the
    remaining lifetime; strict mode answers the full TTL while keeping the original
    expiry, which catches clients that extend a token's life on every re-fetch. In the
    last `token_renew_window` seconds a fetch issues a new token [sim].
    """
    now = state.clock.now()
    ttl = state.settings.token_ttl
    key = f"{kind}:{subject}"
    current = state.tokens.get(state.current_tokens.get(key, ""))
    renew_at = current.expires_at - state.settings.token_renew_window if current else 0
    reuse = state.settings.token_mode != "new_each_call"
    if reuse and current and not current.revoked and now < renew_at:
        remaining = max(1, int(current.expires_at - now))
        return current, (ttl if state.settings.strict_token_expiry else remaining)
    token = Token(
        value=ids.opaque(96),
        kind=kind,
        subject=subject,
        issued_at=now,
        expires_at=now + ttl,
        suite_id=suite_id,
        corpid=corpid,
    )
    state.tokens[token.value] = token
    state.current_tokens[key] = token.value
    return token, ttl


def check_token(state, *, param: str, kind: str, value: str | None) -> Token:
    """Return the valid token `value` of `kind`, or raise the errcode §11 item 3 gives."""
    errors = ERRORS_BY_PARAM[param]
    if not value:
        raise ApiError(errors.missing)
    token = state.tokens.get(value)
    if token is None or token.revoked or token.kind != kind:
        raise ApiError(errors.invalid)
    if token.expires_at <= state.clock.now():
        raise ApiError(errors.expired)
    return token


def revoke_tokens(
    state,
    *,
    value: str | None = None,
    kind: str | None = None,
    suite_id: str | None = None,
    corpid: str | None = None,
) -> int:
    """Revoke every live token matching all given filters; return how many."""
    count = 0
    for token in state.tokens.values():
        if token.revoked:
            continue
        if value is not None and token.value != value:
            continue
        if kind is not None and token.kind != kind:
            continue
        if suite_id is not None and token.suite_id != suite_id:
            continue
        if corpid is not None and token.corpid != corpid:
            continue
        token.revoked = True
        count += 1
    return count


def prune_tokens(state) -> None:
    """Forget tokens expired long ago so a long-running simulator does not grow forever."""
    horizon = state.clock.now() - 86400
    dead = [v for v, t in state.tokens.items() if t.expires_at < horizon]
    for value in dead:
        del state.tokens[value]


def issue_ticket(state, suite_id: str) -> SuiteTicket:
    """Mint a new suite_ticket for suite_id and keep the ones still within their 1800 s."""
    now = state.clock.now()
    ticket = SuiteTicket(ticket=ids.opaque(64), suite_id=suite_id, issued_at=now)
    window = state.settings.ticket_ttl
    kept = [t for t in state.tickets.get(suite_id, []) if t.issued_at > now - window]
    state.tickets[suite_id] = [*kept, ticket]
    return ticket


def ticket_valid(state, suite_id: str, ticket: str) -> bool:
    """Return True if `ticket` was issued to suite_id within the last ticket_ttl seconds."""
    cutoff = state.clock.now() - state.settings.ticket_ttl
    return any(t.ticket == ticket and t.issued_at > cutoff for t in state.tickets.get(suite_id, []))


def gettoken_ban_check(state, client_ip: str) -> None:
    """Refuse gettoken from an IP banned for repeated wrong secrets (45009, §10)."""
    until = state.ip_bans.get(client_ip)
    if until is not None and state.clock.now() < until:
        raise ApiError(45009, "ip banned for repeated wrong secrets")


def gettoken_wrong_secret(state, client_ip: str) -> None:
    """Count one wrong secret from client_ip; ban the IP once the limit is reached."""
    limit = state.settings.wrong_secret_ban_after
    if limit <= 0:
        return
    now = state.clock.now()
    recent = [t for t in state.wrong_secrets.get(client_ip, []) if t > now - 3600] + [now]
    state.wrong_secrets[client_ip] = recent
    if len(recent) >= limit:
        state.ip_bans[client_ip] = now + state.settings.wrong_secret_ban_seconds
