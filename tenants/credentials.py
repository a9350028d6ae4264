"""Provider, suite and corp access tokens: always fresh, fetched once however many ask.

Reading a token: Redis (the fast copy, holding the *sealed* value) → the database (the
durable copy) → a refresh. A refresh runs under a per-credential lock and re-checks once
the lock is held, so one WeCom call serves every waiting caller in every process
(single flight). The database write is compare-and-set on ``expires_at``, so a slow
writer that got its token earlier never overwrites a newer one: the lock saves work,
the CAS keeps data correct.

Beat renews tokens ahead of expiry (see ``tokens_refresh_due``); a request only
refreshes when it finds no usable token, or when WeCom rejected the one it has
(``rejected``): then the token is refreshed only if it is still the current one.
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
from django.db import connection
from django.db.models import F
from django.db.models import Q
from django.utils import timezone

from tenants.models import SUITE_TICKET_MAX_AGE
from tenants.models import Authorization
from tenants.models import CredentialToken
from tenants.models import Provider
from tenants.models import Suite
from tenants.wecom import suite_api
from tenants.wecom import wecom_client
from wecom_provider.observability import remember_secret
from wecom_provider.wecom.client import AccessToken
from wecom_provider.wecom.errors import WeComCorpGone
from wecom_provider.wecom.errors import WeComError

logger = logging.getLogger(__name__)

# Never hand out a token that expires within this margin (the API promises it).
MIN_SERVE_LIFE = timedelta(minutes=5)
# Beat renews a token when 8–12 % of its life is left (jittered per refresh so a fleet
# of tokens obtained together spreads out). Earlier is pointless: WeCom answers the same
# token while it is valid, so an early refresh only spends a call. Later would eat into
# MIN_SERVE_LIFE. 7200 s tokens are renewed 576–864 s before expiry: ≤ 14 calls a day.
REFRESH_AHEAD = (0.08, 0.12)
# When WeCom hands back the token we already had, look again this much later.
SAME_TOKEN_RETRY = timedelta(seconds=60)
LOCK_TIMEOUT = 30  # s: longer than one WeCom call with its timeout
LOCK_WAIT = 20  # s: how long a caller queues behind the refreshing one


class CredentialUnavailable(Exception):
    """No usable token can be had right now (message names ids, never secrets)."""


class SuiteTicketUnavailable(CredentialUnavailable):
    """The suite has no ticket younger than 30 minutes: wait for WeCom's next push."""


class AuthorizationInactive(CredentialUnavailable):
    """The authorization is suspended or cancelled: no corp token is fetched for it."""


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
) -> bool:
    if not value or expires_at is None or expires_at - now < MIN_SERVE_LIFE:
        return False
    if rejected is not None and value == rejected:
        # The caller saw WeCom reject this very token. It is usable only if somebody
        # refreshed it after the caller asked (WeCom may hand back the same value).
        return obtained_at is not None and obtained_at >= asked_at
    return True


def _from_cache(key: str) -> CredentialToken | None:
    try:
        entry = cache.get(_cache_key(key))
    except redis.RedisError:
        logger.warning("token cache unavailable; reading %s from the database", key)
        return None
    if not entry:
        return None
    # Redis holds the sealed value: a Redis dump or AOF file leaks nothing.
    return CredentialToken(
        owner_key=key,
        value_sealed=entry["sealed"],
        expires_at=datetime.fromtimestamp(entry["exp"], tz=UTC),
        obtained_at=datetime.fromtimestamp(entry["obt"], tz=UTC),
    )


def _to_cache(row: CredentialToken) -> None:
    if not row.value_sealed or row.expires_at is None:
        return
    ttl = int((row.expires_at - timezone.now()).total_seconds())
    if ttl <= 0:
        return
    entry = {
        "sealed": row.value_sealed,
        "exp": row.expires_at.timestamp(),
        "obt": (row.obtained_at or timezone.now()).timestamp(),
    }
    try:
        cache.set(_cache_key(row.owner_key), entry, timeout=ttl)
    except redis.RedisError:
        logger.warning("token cache unavailable; %s not cached", row.owner_key)


def _drop_cache(key: str) -> None:
    with contextlib.suppress(redis.RedisError):
        cache.delete(_cache_key(key))


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
    )
    return value if usable else ""


def token_get(owner, *, rejected: str | None = None) -> TokenValue:
    """Return a token for ``owner`` with at least MIN_SERVE_LIFE left.

    ``rejected``: a token WeCom just refused. If it is still the current one it is
    refreshed (once, however many callers report it); if it was already replaced,
    the current token is returned without calling WeCom.
    """
    key = owner_key(owner)
    asked_at = timezone.now()
    cached = _from_cache(key)
    if cached is not None and (
        value := _usable_value(cached, rejected=rejected, asked_at=asked_at)
    ):
        return TokenValue(value, cached.expires_at)
    row = credential_row(owner)
    if value := _usable_value(row, rejected=rejected, asked_at=asked_at):
        _to_cache(row)
        return TokenValue(value, row.expires_at)

    def still_needed(current: CredentialToken) -> bool:
        return not _usable_value(current, rejected=rejected, asked_at=asked_at)

    return _refresh(owner, key, still_needed=still_needed, reason="demand")


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


@contextlib.contextmanager
def _database_lock(key: str) -> Iterator[None]:
    if connection.vendor != "postgresql":
        yield  # SQLite (make run) serialises writers itself
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [key])


def _refresh(owner, key: str, *, still_needed, reason: str) -> TokenValue | None:
    with credential_lock(f"token:{key}"):
        row = CredentialToken.objects.get(owner_key=key)
        if not still_needed(row):
            # Another caller or worker refreshed while we waited for the lock.
            _to_cache(row)
            if row.value_sealed and row.expires_at:
                return TokenValue(row.value, row.expires_at)
            return None
        started = timezone.now()
        clock = time.monotonic()
        try:
            grant = _fetch(owner)
        except (WeComError, CredentialUnavailable) as exc:
            _record_failure(row, owner, exc, reason=reason)
            _observe(row.kind, "error", time.monotonic() - clock)
            raise
        _observe(row.kind, "ok", time.monotonic() - clock)
        return _store(row, grant, started=started)


def _store(row: CredentialToken, grant: AccessToken, *, started: datetime) -> TokenValue:
    remember_secret(grant.value)
    now = timezone.now()
    # Count the lifetime from before the call: the token may be older than our answer.
    expires_at = started + timedelta(seconds=grant.expires_in)
    lifetime = timedelta(seconds=grant.expires_in)
    refresh_after = expires_at - lifetime * random.uniform(*REFRESH_AHEAD)
    current_value = row.value if row.value_sealed else ""
    bookkeeping = {
        "last_refresh_at": now,
        "last_refresh_ok": True,
        "last_error": "",
        "consecutive_failures": 0,
        "refresh_count": F("refresh_count") + 1,
    }
    if grant.value == current_value and row.expires_at and expires_at <= row.expires_at:
        # WeCom answered with the token we hold (same token while valid). Mark it as
        # freshly confirmed so concurrent "rejected" reports do not refetch it, and look
        # again shortly instead of spinning.
        CredentialToken.objects.filter(pk=row.pk).update(
            obtained_at=now,
            refresh_after=min(now + SAME_TOKEN_RETRY, row.expires_at),
            **bookkeeping,
        )
        row.refresh_from_db()
        _to_cache(row)
        return TokenValue(row.value, row.expires_at)
    fresh = CredentialToken(owner_key=row.owner_key)
    fresh.value = grant.value
    updated = (
        CredentialToken.objects.filter(pk=row.pk)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lt=expires_at))
        .update(
            value_sealed=fresh.value_sealed,
            expires_at=expires_at,
            obtained_at=now,
            refresh_after=refresh_after,
            **bookkeeping,
        )
    )
    row.refresh_from_db()
    if not updated:
        logger.info("token %s: a newer token was stored concurrently; keeping it", row.owner_key)
    _to_cache(row)
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


def _record_failure(row: CredentialToken, owner, exc: Exception, *, reason: str) -> None:
    # Store the class and errcode only: errmsg is scrubbed, but ids are all ops need here.
    errcode = getattr(exc, "errcode", None)
    summary = type(exc).__name__ + (f" errcode={errcode}" if errcode is not None else "")
    updates = {
        "last_refresh_at": timezone.now(),
        "last_refresh_ok": False,
        "last_error": summary[:300],
        "consecutive_failures": F("consecutive_failures") + 1,
    }
    if isinstance(exc, WeComCorpGone | AuthorizationInactive):
        updates["refresh_enabled"] = False
    elif reason == "schedule":
        # Try again soon, backing off with the failure count (capped at 10 minutes).
        delay = min(600, 30 * 2 ** min(row.consecutive_failures, 5))
        updates["refresh_after"] = timezone.now() + timedelta(
            seconds=delay * random.uniform(0.8, 1.2)
        )
    CredentialToken.objects.filter(pk=row.pk).update(**updates)
    logger.warning("token refresh failed for %s (%s): %s", row.owner_key, reason, summary)
    if isinstance(exc, WeComCorpGone) and isinstance(owner, Authorization):
        from tenants import services

        services.authorization_suspend(
            authorization=owner, reason=f"WeCom errcode {errcode}: corp unavailable", actor="system"
        )


def _observe(kind: str, outcome: str, seconds: float) -> None:
    from wecom_provider.observability import metrics

    metrics.TOKEN_REFRESH_TOTAL.labels(kind=kind, outcome=outcome).inc()
    metrics.TOKEN_REFRESH_SECONDS.labels(kind=kind).observe(seconds)


def token_invalidate(owner) -> None:
    """Forget the owner's token (cancel, reset): the next reader fetches a new one."""
    key = owner_key(owner)
    CredentialToken.objects.filter(owner_key=key).update(
        value_sealed="", expires_at=None, obtained_at=None, refresh_after=None
    )
    _drop_cache(key)


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
    try:
        _refresh(owner, key, still_needed=still_due, reason="schedule")
    except CredentialUnavailable as exc:
        logger.info("scheduled refresh of %s skipped: %s", key, exc)
        return False
    return True
