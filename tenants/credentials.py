"""Provider, suite and corp access tokens: always fresh, fetched once however many ask.

Reading a token: Redis (the fast copy, holding the *sealed* value) → the database (the
durable copy) → a refresh. A refresh runs under a per-credential lock and re-checks once
the lock is held, so one WeCom call serves every waiting caller in every process
(single flight). The database write is compare-and-set on the row's ``generation``:
every write (a stored token, an invalidation) bumps it, so a slow writer that started
under an older generation never overwrites a newer token, and a token fetched while
the credential was invalidated (cancel, reset, suspend) is thrown away, never served.
The lock saves work, the generation keeps data correct.

Redis copies are fenced too: an invalidation writes a fence mark next to the entry, and
an entry read from the database before the mark is ignored (a reader that re-cached an
old row between the invalidation's delete and its commit cannot resurrect it).

Beat renews tokens ahead of expiry, once per window (see ``tokens_refresh_due``). When
WeCom hands back the value we hold (same token while valid), the token is served to
its real expiry and fetched again only after it (``reissues_same``). A request only
refreshes when it finds no usable token, or when WeCom rejected the one it has
(``rejected``): then the token is refreshed only if it is still the current one, at
most once per FORCED_REFRESH_COOLDOWN. A failed fetch is remembered with a backoff by
error class (``retry_not_before``): meanwhile no WeCom call is made and callers get
CredentialBackoff (the API answers 503 with Retry-After).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import redis
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from tenants.models import SUITE_TICKET_MAX_AGE
from tenants.models import Authorization
from tenants.models import CredentialToken
from tenants.models import Provider
from tenants.models import Suite
from tenants.wecom import suite_api
from tenants.wecom import wecom_client
from wecom_provider import pglocks
from wecom_provider.observability import remember_secret
from wecom_provider.wecom.client import AccessToken
from wecom_provider.wecom.errors import WeComCorpGone
from wecom_provider.wecom.errors import WeComError

logger = logging.getLogger(__name__)

# Never hand out a token that expires within this margin (the API promises it), except
# a token WeCom re-issued unchanged: asking again before it expires is pointless.
MIN_SERVE_LIFE = timedelta(minutes=5)
# Beat renews a token when 5–8 % of its life is left (jittered per refresh so a fleet
# of tokens obtained together spreads out). 7200 s tokens are renewed 360–576 s before
# expiry (above MIN_SERVE_LIFE plus a beat tick): at most 1 + 86400 / 6624 → 14 calls a
# day. A credential whose WeCom hands back the same value is renewed only after expiry.
REFRESH_AHEAD = (0.05, 0.08)
# A re-issued token is fetched again this long after our (conservative) expiry: our
# expiry is counted from before the call, WeCom's may be up to a second later.
REISSUE_GRACE = timedelta(seconds=2)
# Redis fence marks outlive every cache entry they fence (tokens live ≤ 7200 s).
FENCE_TTL = 3 * 3600
LOCK_TIMEOUT = 30  # s: longer than one WeCom call with its timeout
LOCK_WAIT = 20  # s: how long a caller queues behind the refreshing one


class CredentialUnavailable(Exception):
    """No usable token can be had right now (message names ids, never secrets)."""


class SuiteTicketUnavailable(CredentialUnavailable):
    """The suite has no ticket younger than 30 minutes: wait for WeCom's next push."""


class AuthorizationInactive(CredentialUnavailable):
    """The authorization is suspended or cancelled: no corp token is fetched for it."""


class CredentialBackoff(CredentialUnavailable):
    """A recent fetch failed; no WeCom call is made before ``retry_after`` seconds pass."""

    def __init__(
        self, message: str, *, retry_after: int, flagged: bool = False, errcode: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.flagged = flagged
        self.errcode = errcode


def _setting(name: str, default):
    from django.conf import settings

    return getattr(settings, name, default)


def forced_refresh_cooldown() -> timedelta:
    """At most one rejection-driven WeCom call per credential per this period."""
    return timedelta(seconds=_setting("TOKEN_FORCED_REFRESH_COOLDOWN", 60))


# Errcodes meaning the credential itself is wrong or dead (secret, corpid, permanent
# code, appid; the corp-gone family is added below): retrying soon only risks a ban
# (gettoken bans the IP for an hour after repeated wrong secrets, protocol §5.4).
CREDENTIAL_ERRCODES = frozenset({40001, 40013, 40082, 40084, 40086})


@dataclass(frozen=True)
class TokenValue:
    value: str = field(repr=False)
    expires_at: datetime

    def expires_in(self, *, now: datetime | None = None) -> int:
        return max(0, int((self.expires_at - (now or timezone.now())).total_seconds()))


# --- identity ---------------------------------------------------------------------


def owner_key(owner: Provider | Suite | Authorization) -> str:
    """Return the credential's stable key: ids only (safe for locks, caches, logs)."""
    if isinstance(owner, Provider):
        return f"provider:{owner.corpid}"
    if isinstance(owner, Suite):
        return f"suite:{owner.suite_id}"
    if isinstance(owner, Authorization):
        return f"corp:{owner.suite.suite_id}:{owner.corp.corpid}"
    raise TypeError(f"no credential for {type(owner).__name__}")


def _kind(owner) -> str:
    if isinstance(owner, Provider):
        return CredentialToken.Kind.PROVIDER
    if isinstance(owner, Suite):
        return CredentialToken.Kind.SUITE
    return CredentialToken.Kind.CORP


def credential_row(owner) -> CredentialToken:
    """Return the owner's CredentialToken row, creating an empty one on first use."""
    key = owner_key(owner)
    links = {
        "provider": owner if isinstance(owner, Provider) else None,
        "suite": owner if isinstance(owner, Suite) else None,
        "authorization": owner if isinstance(owner, Authorization) else None,
    }
    row, _ = CredentialToken.objects.get_or_create(
        owner_key=key, defaults={"kind": _kind(owner), **links}
    )
    return row


# --- reading ------------------------------------------------------------------------


def _cache_key(key: str) -> str:
    return f"token:{key}"


def _usable(
    *,
    value: str,
    expires_at: datetime | None,
    obtained_at: datetime | None,
    now: datetime,
    rejected: str | None,
    asked_at: datetime,
    reissued: bool = False,
) -> bool:
    if not value or expires_at is None:
        return False
    # A re-issued token is served to its last second (WeCom would hand back the same
    # value anyway); any other one only with MIN_SERVE_LIFE left.
    if expires_at - now < (timedelta(seconds=1) if reissued else MIN_SERVE_LIFE):
        return False
    if rejected is not None and value == rejected:
        # The caller saw WeCom reject this very token. It is usable only if somebody
        # refreshed it after the caller asked (WeCom may hand back the same value).
        return obtained_at is not None and obtained_at >= asked_at
    return True


def _fence_key(cache_key: str) -> str:
    return f"fence:{cache_key}"


def cache_read_fenced(cache_key: str) -> dict | None:
    """Return the cache entry under ``cache_key`` unless a later invalidation fenced it.

    One round trip (MGET of the entry and its fence mark). Used for tokens and JS-SDK
    tickets alike.
    """
    try:
        found = cache.get_many([cache_key, _fence_key(cache_key)])
    except redis.RedisError:
        logger.warning("token cache unavailable; reading %s from the database", cache_key)
        return None
    entry = found.get(cache_key)
    if not entry:
        return None
    fence = found.get(_fence_key(cache_key))
    if fence is not None and entry.get("read", 0) <= fence:
        return None  # copied from the database before the last invalidation
    return entry


def cache_write_fenced(cache_key: str, entry: dict, *, read_at: float, ttl: int) -> None:
    """Cache ``entry`` as read from the database at ``read_at`` (time.time())."""
    if ttl <= 0:
        return
    try:
        cache.set(cache_key, {**entry, "read": read_at}, timeout=ttl)
    except redis.RedisError:
        logger.warning("token cache unavailable; %s not cached", cache_key)


def cache_fence(cache_key: str) -> None:
    """Drop the entry and fence it: copies read from the database before now are void."""
    with contextlib.suppress(redis.RedisError):
        cache.set(_fence_key(cache_key), time.time(), timeout=FENCE_TTL)
        cache.delete(cache_key)


def _from_cache(key: str) -> CredentialToken | None:
    entry = cache_read_fenced(_cache_key(key))
    if not entry:
        return None
    # Redis holds the sealed value: a Redis dump or AOF file leaks nothing.
    return CredentialToken(
        owner_key=key,
        value_sealed=entry["sealed"],
        expires_at=datetime.fromtimestamp(entry["exp"], tz=UTC),
        obtained_at=datetime.fromtimestamp(entry["obt"], tz=UTC),
        reissues_same=bool(entry.get("same")),
        generation=entry.get("gen", 0),
    )


def _to_cache(row: CredentialToken, *, read_at: float) -> None:
    """Cache ``row`` as read from the database at ``read_at`` (taken before the read)."""
    if not row.value_sealed or row.expires_at is None:
        return
    entry = {
        "sealed": row.value_sealed,
        "exp": row.expires_at.timestamp(),
        "obt": (row.obtained_at or timezone.now()).timestamp(),
        "same": row.reissues_same,
        "gen": row.generation,
    }
    ttl = int((row.expires_at - timezone.now()).total_seconds())
    cache_write_fenced(_cache_key(row.owner_key), entry, read_at=read_at, ttl=ttl)


def _drop_cache(key: str) -> None:
    cache_fence(_cache_key(key))


def _usable_value(row: CredentialToken, *, rejected: str | None, asked_at: datetime) -> str:
    """Return the row's token if it may be served, else "" (the value is opened once)."""
    value = row.value if row.value_sealed else ""
    usable = _usable(
        value=value,
        expires_at=row.expires_at,
        obtained_at=row.obtained_at,
        now=timezone.now(),
        rejected=rejected,
        asked_at=asked_at,
        reissued=row.reissues_same,
    )
    return value if usable else ""


def token_get(owner, *, rejected: str | None = None) -> TokenValue:
    """Return a token for ``owner`` with at least MIN_SERVE_LIFE left.

    ``rejected``: a token WeCom just refused. If it is still the current one it is
    refreshed (once, however many callers report it); if it was already replaced,
    the current token is returned without calling WeCom.
    """
    if isinstance(owner, Authorization) and not owner.is_active:
        # Revocation bites on every path, the cache included: API callers pass the
        # tenant row read by this very request, so a suspend or cancel committed in any
        # process is seen by the next request (the invalidation fences the copies too).
        raise AuthorizationInactive(f"authorization {owner} is {owner.status}")
    key = owner_key(owner)
    asked_at = timezone.now()
    cached = _from_cache(key)
    if cached is not None and (
        value := _usable_value(cached, rejected=rejected, asked_at=asked_at)
    ):
        return TokenValue(value, cached.expires_at)
    read_at = time.time()
    row = credential_row(owner)
    if value := _usable_value(row, rejected=rejected, asked_at=asked_at):
        _to_cache(row, read_at=read_at)
        return TokenValue(value, row.expires_at)

    def still_needed(current: CredentialToken) -> bool:
        if _usable_value(current, rejected=rejected, asked_at=asked_at):
            return False
        # Reported again within the cool-down: one forced call per period is all a
        # credential gets; every other reporter is handed the current token.
        return not (
            rejected is not None
            and _in_cooldown(current)
            and _usable_value(current, rejected=None, asked_at=asked_at)
        )

    return _refresh(
        owner, key, still_needed=still_needed, reason="rejected" if rejected else "demand"
    )


def _in_cooldown(row: CredentialToken) -> bool:
    return (
        row.forced_refresh_at is not None
        and timezone.now() - row.forced_refresh_at < forced_refresh_cooldown()
    )


def _check_backoff(row: CredentialToken) -> None:
    now = timezone.now()
    if row.retry_not_before is not None and row.retry_not_before > now:
        wait = (row.retry_not_before - now).total_seconds()
        raise CredentialBackoff(
            f"{row.owner_key}: the last fetch failed ({row.last_error}); retrying later",
            retry_after=int(wait) + 1,
            flagged=row.flagged,
            errcode=_errcode_of(row.last_error),
        )


def _errcode_of(summary: str) -> int | None:
    _, _, code = summary.partition("errcode=")
    return int(code) if code.lstrip("-").isdigit() else None


# --- refreshing -------------------------------------------------------------------------


@contextlib.contextmanager
def credential_lock(key: str) -> Iterator[None]:
    """Hold the lock for one credential or ticket ``key`` (ids only) across processes.

    Redis is the lock service; if it is down, a PostgreSQL advisory lock on the same
    key takes over. The JS-SDK ticket cache (api.services) uses it too.
    """
    try:
        lock = cache.lock(f"wcp:lock:{key}", timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT)
        acquired = lock.acquire()
    except redis.RedisError:
        lock = None
        acquired = False
        logger.warning("lock service unavailable; using a database lock for %s", key)
    if lock is not None:
        if not acquired:
            raise CredentialUnavailable(f"timed out waiting for the refresh of {key}")
        try:
            yield
        finally:
            with contextlib.suppress(redis.RedisError):
                lock.release()
        return
    with _database_lock(key):
        yield


def _database_lock(key: str):
    # Transaction-scoped on a connection of its own: holds behind PgBouncer's
    # transaction pooling, where a session lock and its unlock can land on different
    # server connections (wecom_provider/pglocks.py).
    return pglocks.advisory_lock(key)


def _refresh(owner, key: str, *, still_needed, reason: str) -> TokenValue | None:
    with credential_lock(f"token:{key}"):
        read_at = time.time()
        row = CredentialToken.objects.get(owner_key=key)
        if not still_needed(row):
            # Another caller or worker refreshed while we waited for the lock.
            _to_cache(row, read_at=read_at)
            if row.value_sealed and row.expires_at:
                return TokenValue(row.value, row.expires_at)
            return None
        if reason != "rejected" or row.flagged:
            # A rejection report may retry a system failure at once (the cool-down caps
            # it); nobody retries a credential failure before its backoff ends.
            _check_backoff(row)
        if row.reissues_same and row.value_sealed and row.expires_at:
            # Our expiry of a re-issued token is counted from before the call; WeCom's
            # may be a moment later. Asking inside that moment gets the dying value again.
            wait = (row.expires_at + REISSUE_GRACE - timezone.now()).total_seconds()
            if 0 < wait <= REISSUE_GRACE.total_seconds() and reason != "rejected":
                time.sleep(wait)
        generation = row.generation
        started = timezone.now()
        if reason == "rejected":
            # Bookkeeping only (no generation bump): starts the cool-down.
            CredentialToken.objects.filter(pk=row.pk).update(forced_refresh_at=started)
        clock = time.monotonic()
        try:
            grant = _fetch(owner)
        except (WeComError, CredentialUnavailable) as exc:
            delay = _record_failure(row, owner, exc, reason=reason)
            _observe(row.kind, "error", time.monotonic() - clock)
            if getattr(exc, "errcode", None) in CREDENTIAL_ERRCODES and not isinstance(
                exc, WeComCorpGone
            ):
                # Products see the backoff (503 + Retry-After), not WeCom's refusal.
                raise CredentialBackoff(
                    f"{key}: WeCom refused the credential (errcode {exc.errcode})",
                    retry_after=delay,
                    flagged=True,
                    errcode=exc.errcode,
                ) from exc
            raise
        _observe(row.kind, "ok", time.monotonic() - clock)
        return _store(row, grant, started=started, generation=generation)


def _store(
    row: CredentialToken, grant: AccessToken, *, started: datetime, generation: int
) -> TokenValue:
    """Store ``grant`` if the row is still at ``generation`` (the one it was fetched under).

    Refused when anything wrote the row since (an invalidation, another writer): the
    grant is then dropped and never served; the caller gets the row's current token if
    it is usable, else CredentialUnavailable.
    """
    remember_secret(grant.value)
    now = timezone.now()
    # Count the lifetime from before the call: the token may be older than our answer.
    expires_at = started + timedelta(seconds=grant.expires_in)
    lifetime = timedelta(seconds=grant.expires_in)
    current_value = row.value if row.value_sealed else ""
    same = bool(current_value) and grant.value == current_value
    reissues = row.reissues_same or same
    if same and row.expires_at is not None and row.expires_at > now:
        # WeCom handed back the value we hold: its expiry is the original one (never
        # extend it, whatever expires_in says). Serve it to that expiry and ask once
        # more only after it.
        expires_at = min(expires_at, row.expires_at)
    if reissues:
        refresh_after = expires_at + REISSUE_GRACE
    else:
        refresh_after = expires_at - lifetime * random.uniform(*REFRESH_AHEAD)
    fresh = CredentialToken(owner_key=row.owner_key)
    fresh.value = grant.value
    read_at = time.time()
    updated = CredentialToken.objects.filter(pk=row.pk, generation=generation).update(
        value_sealed=fresh.value_sealed,
        expires_at=expires_at,
        obtained_at=now,
        refresh_after=refresh_after,
        reissues_same=reissues,
        generation=F("generation") + 1,
        last_refresh_at=now,
        last_refresh_ok=True,
        last_error="",
        consecutive_failures=0,
        retry_not_before=None,
        flagged=False,
        refresh_count=F("refresh_count") + 1,
    )
    row.refresh_from_db()
    if not updated:
        logger.info(
            "token %s: the row moved on while fetching (generation %s → %s); dropped",
            row.owner_key,
            generation,
            row.generation,
        )
        value = _usable_value(row, rejected=None, asked_at=now)
        if not value:
            raise CredentialUnavailable(f"{row.owner_key} was invalidated during its refresh")
        return TokenValue(value, row.expires_at)
    _to_cache(row, read_at=read_at)
    return TokenValue(row.value, row.expires_at)


def _fetch(owner) -> AccessToken:
    client = wecom_client()
    if isinstance(owner, Provider):
        return client.get_provider_token(corpid=owner.corpid, provider_secret=owner.provider_secret)
    if isinstance(owner, Suite):
        ticket = suite_ticket_current(owner)
        return client.get_suite_token(
            suite_id=owner.suite_id, suite_secret=owner.secret, suite_ticket=ticket
        )
    authorization = Authorization.objects.select_related("suite", "corp").get(pk=owner.pk)
    if not authorization.is_active:
        raise AuthorizationInactive(
            f"authorization {authorization.corp.corpid}@{authorization.suite.suite_id} "
            f"is {authorization.status}"
        )
    if authorization.suite.is_customized:
        # 代开发: the permanent code is the app's corpsecret (protocol §4.4).
        return client.get_customized_corp_token(
            corpid=authorization.corp.corpid, corpsecret=authorization.permanent_code
        )
    return suite_api(authorization.suite).get_corp_token(
        auth_corpid=authorization.corp.corpid, permanent_code=authorization.permanent_code
    )


def suite_ticket_current(suite: Suite) -> str:
    """Return the suite's newest ticket if WeCom still accepts it (< 30 min old)."""
    suite = Suite.objects.get(pk=suite.pk)
    age = suite.ticket_age()
    if age is None or age > SUITE_TICKET_MAX_AGE:
        raise SuiteTicketUnavailable(f"suite {suite.suite_id} has no ticket younger than 30 min")
    return suite.suite_ticket


def _record_failure(row: CredentialToken, owner, exc: Exception, *, reason: str) -> int:
    """Remember the failure on the row with its backoff; return the backoff in seconds."""
    # Store the class and errcode only: errmsg is scrubbed, but ids are all ops need here.
    errcode = getattr(exc, "errcode", None)
    summary = type(exc).__name__ + (f" errcode={errcode}" if errcode is not None else "")
    now = timezone.now()
    updates = {
        "last_refresh_at": now,
        "last_refresh_ok": False,
        "last_error": summary[:300],
        "consecutive_failures": F("consecutive_failures") + 1,
    }
    failures = row.consecutive_failures + 1
    delay = 0
    if isinstance(exc, AuthorizationInactive):
        updates["refresh_enabled"] = False
    elif isinstance(exc, WeComCorpGone) or errcode in CREDENTIAL_ERRCODES:
        # The credential itself is refused: long backoff (the first retries a little
        # sooner, so a secret fixed by ops is picked up), flagged for ops, alert metric.
        long_backoff = _setting("TOKEN_CREDENTIAL_BACKOFF", 3600)
        delay = long_backoff if failures >= 2 else min(long_backoff, 300)
        updates.update(flagged=True, retry_not_before=now + timedelta(seconds=delay))
        updates["refresh_after"] = now + timedelta(seconds=delay)
        if isinstance(exc, WeComCorpGone):
            updates["refresh_enabled"] = False
        _alert(row.kind, errcode)
    elif isinstance(exc, SuiteTicketUnavailable):
        # No WeCom call was made; look again when WeCom's next push may have come (a
        # demand read with a new ticket need not wait: no retry_not_before).
        updates["refresh_after"] = now + timedelta(seconds=60 * random.uniform(1.0, 1.2))
    else:
        # A system error (-1, timeout, 5xx, busy, rate limit): short exponential backoff,
        # three tries in quick succession at most (errcode help: ≤ 3 retries), then
        # minutes apart.
        delay = 2**failures if failures <= 3 else min(600, 60 * 2 ** (failures - 4))
        delay *= random.uniform(1.0, 1.2)
        updates["retry_not_before"] = now + timedelta(seconds=delay)
        updates["refresh_after"] = now + timedelta(seconds=delay)
    # Bookkeeping only: the generation is not bumped (the token, if any, is unchanged).
    CredentialToken.objects.filter(pk=row.pk).update(**updates)
    logger.warning("token refresh failed for %s (%s): %s", row.owner_key, reason, summary)
    if isinstance(exc, WeComCorpGone) and isinstance(owner, Authorization):
        from tenants import services

        services.authorization_suspend(
            authorization=owner, reason=f"WeCom errcode {errcode}: corp unavailable", actor="system"
        )
    return int(delay) + 1


def _alert(kind: str, errcode) -> None:
    from wecom_provider.observability import metrics

    metrics.TOKEN_REFRESH_TOTAL.labels(kind=kind, outcome="credential_refused").inc()


def _observe(kind: str, outcome: str, seconds: float) -> None:
    from wecom_provider.observability import metrics

    metrics.TOKEN_REFRESH_TOTAL.labels(kind=kind, outcome=outcome).inc()
    metrics.TOKEN_REFRESH_SECONDS.labels(kind=kind).observe(seconds)


def token_invalidate(owner) -> None:
    """Forget the owner's token (cancel, reset, suspend): the next reader fetches anew.

    Bumps the generation, so a refresh in flight cannot store (or serve) the token it
    is fetching, and fences the Redis copy. For a tenant, its JS-SDK tickets (derived
    from the corp token) are invalidated the same way. The backoff is cleared: a new
    permanent code or secret deserves a fresh try.
    """
    key = owner_key(owner)
    CredentialToken.objects.filter(owner_key=key).update(
        value_sealed="",
        expires_at=None,
        obtained_at=None,
        refresh_after=None,
        reissues_same=False,
        retry_not_before=None,
        flagged=False,
        generation=F("generation") + 1,
    )
    _drop_cache(key)
    if isinstance(owner, Authorization):
        for hook in TENANT_INVALIDATION_HOOKS:
            hook(authorization=owner)


# Called with ``authorization=`` whenever a tenant's corp token is invalidated: caches
# derived from that token register here (api: JS-SDK tickets, in ApiConfig.ready), so
# tenants never imports the layers above it.
TENANT_INVALIDATION_HOOKS: list = []


def token_backoff_clear(owner) -> None:
    """Forget a remembered failure (ops fixed the secret): the next read may call WeCom."""
    CredentialToken.objects.filter(owner_key=owner_key(owner)).update(
        retry_not_before=None, flagged=False, forced_refresh_at=None
    )


# --- scheduled refresh ----------------------------------------------------------------


def tokens_due(*, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Return owner keys whose scheduled refresh time has come (an index range scan)."""
    now = now or timezone.now()
    return list(
        CredentialToken.objects.filter(refresh_enabled=True, refresh_after__lte=now)
        .order_by("refresh_after")
        .values_list("owner_key", flat=True)[:limit]
    )


def token_refresh_scheduled(key: str) -> bool:
    """Renew one due token; return False when it was not due any more (already renewed).

    Safe to run twice (two beats, a redelivered task): the re-check under the lock
    turns the second run into a no-op.
    """
    row = (
        CredentialToken.objects.select_related(
            "provider", "suite", "authorization__suite", "authorization__corp"
        )
        .filter(owner_key=key)
        .first()
    )
    if row is None or not row.refresh_enabled:
        return False
    owner = row.provider or row.suite or row.authorization

    def still_due(current: CredentialToken) -> bool:
        return current.refresh_enabled and (
            current.refresh_after is None or current.refresh_after <= timezone.now()
        )

    if not still_due(row):
        return False
    if row.retry_not_before is not None and row.retry_not_before > timezone.now():
        return False  # in a failure's backoff: the row is rescheduled for its end
    try:
        _refresh(owner, key, still_needed=still_due, reason="schedule")
    except CredentialUnavailable as exc:
        logger.info("scheduled refresh of %s skipped: %s", key, exc)
        return False
    return True
