"""One machinery for every cached WeCom credential: access tokens and JS-SDK tickets.

A credential lives in a row (the durable copy, value sealed) and in Redis (the fast
copy, value still sealed). Reading: Redis → the database → a fetch. A fetch runs under
a per-credential lock and re-checks once the lock is held, so one WeCom call serves
every waiting caller in every process (single flight). The store is compare-and-set on
the row's ``generation``: every write (a stored value, an invalidation) bumps it, so a
slow writer that started under an older generation never overwrites a newer value,
and a value fetched while the credential was invalidated is thrown away, never served.
The lock saves work, the generation keeps data correct.

Redis copies are fenced: an invalidation writes a fence mark next to the entry, and an
entry copied from the database before the mark is ignored (a reader that re-cached an
old row between the invalidation's delete and its commit cannot resurrect it).

A failed fetch is remembered on the row with a backoff by error class
(``retry_not_before``): meanwhile no WeCom call is made and callers get
CredentialBackoff (the API answers 503 with Retry-After). A caller reporting the value
rejected forces at most one fetch per FORCED_REFRESH_COOLDOWN.

What differs between kinds (how to fetch, which row, which errcodes mean "this
credential is wrong", what else to write) is a ``Fetcher`` subclass:
``tenants.credentials.TokenFetcher`` (provider, suite, corp tokens) and
``api.services.TicketFetcher`` (corp and agent JS-SDK tickets).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from enum import StrEnum

import redis
from django.core.cache import cache
from django.db import models
from django.db.models import F
from django.utils import timezone

from wecom.errors import WeComCorpGone
from wecom.errors import WeComError
from wecom.errors import WeComTokenInvalid
from wecom.ratelimit import WeComThrottled
from wecom_provider import pglocks
from wecom_provider.backoff import exponential
from wecom_provider.backoff import jittered
from wecom_provider.observability import remember_secret

logger = logging.getLogger(__name__)

# Never hand out a value that expires within this margin (the API promises it), except
# one WeCom re-issued unchanged: asking again before it expires is pointless.
MIN_SERVE_LIFE = timedelta(minutes=5)
# A re-issued value is fetched again this long after our (conservative) expiry: our
# expiry is counted from before the call, WeCom's may be up to a second later.
REISSUE_GRACE = timedelta(seconds=2)
# Redis fence marks outlive every cache entry they fence (values live ≤ 7200 s).
FENCE_TTL = 3 * 3600
LOCK_TIMEOUT = 30  # s: longer than one WeCom call with its timeout
LOCK_WAIT = 20  # s: how long a caller queues behind the fetching one


class CredentialUnavailable(Exception):
    """No usable value can be had right now (message names ids, never secrets)."""


class AuthorizationInactive(CredentialUnavailable):
    """The authorization is suspended or cancelled: nothing is fetched for it."""


class CredentialBackoff(CredentialUnavailable):
    """A recent fetch failed; no WeCom call is made before ``retry_after`` seconds pass."""

    def __init__(
        self, message: str, *, retry_after: int, flagged: bool = False, errcode: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
        self.flagged = flagged
        self.errcode = errcode


class Failure(StrEnum):
    """What a failed fetch means for the credential, hence its backoff."""

    # WeCom refused the credential itself (wrong secret, corpid, permanent code): long
    # backoff, flagged for ops, alert metric. gettoken bans the IP for an hour after
    # repeated wrong secrets (protocol §5.4), so retrying soon only makes it worse.
    CREDENTIAL = "credential"
    # The corp is dissolved, banned or no longer authorizes the app: as CREDENTIAL, and
    # the tenant stops refreshing.
    CORP_GONE = "corp_gone"
    # A credential this one is fetched *with* failed (the suite token behind a corp
    # token, the corp token behind a ticket): short backoff, this one is not flagged
    # (a bad suite token must not flag every corp of the suite).
    UPSTREAM = "upstream"
    # -1, timeouts, 5xx, busy, rate limits: short exponential backoff (≤ 3 quick tries).
    SYSTEM = "system"
    # No WeCom call was made (no fresh suite ticket yet): look again soon.
    WAIT = "wait"
    # The tenant is suspended or cancelled.
    INACTIVE = "inactive"


FLAGGING = frozenset({Failure.CREDENTIAL, Failure.CORP_GONE})


def _setting(name: str, default):
    from django.conf import settings

    return getattr(settings, name, default)


def forced_refresh_cooldown() -> timedelta:
    """At most one rejection-driven WeCom call per credential per this period."""
    return timedelta(seconds=_setting("TOKEN_FORCED_REFRESH_COOLDOWN", 60))


def backoff_seconds(failure: Failure, failures: int) -> float:
    """Return how long no WeCom call is made after the ``failures``-th failure in a row."""
    if failure in FLAGGING:
        # The first retry comes a little sooner, so a secret fixed by ops is picked up.
        long_backoff = _setting("TOKEN_CREDENTIAL_BACKOFF", 3600)
        return long_backoff if failures >= 2 else min(long_backoff, 300)
    if failure in (Failure.SYSTEM, Failure.UPSTREAM):
        # Three tries in quick succession at most (errcode help: ≤ 3 retries), then
        # minutes apart; jittered so a fleet that failed together spreads out.
        if failures <= 3:
            delay = exponential(failures, base=1, cap=8)  # 2, 4, 8 s
        else:
            delay = exponential(failures - 4, base=60, cap=600)  # 1, 2, 4 … 10 min
        return jittered(delay, low=1.0, high=1.2)
    return 0.0


@dataclass(frozen=True)
class TokenValue:
    """A served credential value (token or ticket) and its real expiry."""

    value: str = field(repr=False)
    expires_at: datetime

    def expires_in(self, *, now: datetime | None = None) -> int:
        return max(0, int((self.expires_at - (now or timezone.now())).total_seconds()))


# --- fenced Redis copies ------------------------------------------------------------------


def _fence_key(cache_key: str) -> str:
    return f"fence:{cache_key}"


def cache_read_fenced(cache_key: str) -> dict | None:
    """Return the cache entry under ``cache_key`` unless a later invalidation fenced it.

    One round trip (MGET of the entry and its fence mark).
    """
    try:
        found = cache.get_many([cache_key, _fence_key(cache_key)])
    except redis.RedisError:
        logger.warning("credential cache unavailable; reading %s from the database", cache_key)
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
        logger.warning("credential cache unavailable; %s not cached", cache_key)


def cache_fence(cache_key: str) -> None:
    """Drop the entry and fence it: copies read from the database before now are void."""
    with contextlib.suppress(redis.RedisError):
        cache.set(_fence_key(cache_key), time.time(), timeout=FENCE_TTL)
        cache.delete(cache_key)


# --- the lock ------------------------------------------------------------------------------


@contextlib.contextmanager
def credential_lock(key: str) -> Iterator[None]:
    """Hold the lock for one credential ``key`` (ids only) across processes.

    Redis is the lock service; if it is down, a PostgreSQL advisory lock on the same
    key takes over.
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


# --- the fetcher ----------------------------------------------------------------------------


def errcode_of(summary: str) -> int | None:
    _, _, code = summary.partition("errcode=")
    return int(code) if code.lstrip("-").isdigit() else None


def _alert(kind: str, errcode) -> None:
    from wecom_provider.observability import metrics

    metrics.TOKEN_REFRESH_TOTAL.labels(kind=kind, outcome="credential_refused").inc()


def _observe(kind: str, outcome: str, seconds: float) -> None:
    from wecom_provider.observability import metrics

    metrics.TOKEN_REFRESH_TOTAL.labels(kind=kind, outcome=outcome).inc()
    metrics.TOKEN_REFRESH_SECONDS.labels(kind=kind).observe(seconds)


class Fetcher:
    """One credential: its row, its Redis copy, its lock and how WeCom hands it out.

    Rows (``model``) carry: owner_key, value_sealed/value, expires_at, obtained_at,
    generation, reissues_same, retry_not_before, forced_refresh_at, flagged,
    last_refresh_at, last_refresh_ok, last_error, consecutive_failures and the
    ``count_field`` counter.
    """

    model: type[models.Model]
    cache_prefix: str  # "token" or "ticket": the Redis key is "<prefix>:<owner_key>"
    count_field: str  # counts stored fetches
    metric_kind: str = ""
    # Errcodes meaning this credential itself is wrong (per WeCom call, protocol §9).
    credential_errcodes: frozenset[int] = frozenset()

    def __init__(self, key: str) -> None:
        self.key = key

    # --- what subclasses provide

    def load_row(self) -> models.Model:
        """Return the credential's row, creating an empty one on first use."""
        raise NotImplementedError

    def fetch(self):
        """Call WeCom; return an object with ``value`` and ``expires_in``."""
        raise NotImplementedError

    def kind_label(self, row) -> str:
        return self.metric_kind

    def classify(self, exc: Exception) -> Failure:
        if isinstance(exc, AuthorizationInactive):
            return Failure.INACTIVE
        if isinstance(exc, CredentialUnavailable):
            # Raised while getting what this fetch needs (the suite token, the corp
            # token): that credential remembered its own failure.
            return Failure.UPSTREAM
        if isinstance(exc, WeComTokenInvalid):
            # The token in the query string (not this credential) was refused even after
            # the client's one refresh and retry.
            return Failure.UPSTREAM
        if isinstance(exc, WeComCorpGone):
            return Failure.CORP_GONE
        if getattr(exc, "errcode", None) in self.credential_errcodes:
            return Failure.CREDENTIAL
        return Failure.SYSTEM

    def store_extra(self, *, expires_at: datetime, lifetime: timedelta, reissues: bool) -> dict:
        """More fields to write with a stored value."""
        return {}

    def failure_extra(self, failure: Failure, *, delay: float, now: datetime) -> dict:
        """More fields to write with a failure."""
        return {}

    def after_failure(self, failure: Failure, exc: Exception) -> None:
        """Act on a recorded failure (e.g. suspend a tenant whose corp is gone)."""

    # --- identity and copies

    @property
    def cache_key(self) -> str:
        return f"{self.cache_prefix}:{self.key}"

    @property
    def lock_key(self) -> str:
        return self.cache_key

    def from_cache(self):
        entry = cache_read_fenced(self.cache_key)
        if not entry:
            return None
        # Redis holds the sealed value: a Redis dump or AOF file leaks nothing.
        return self.model(
            owner_key=self.key,
            value_sealed=entry["sealed"],
            expires_at=datetime.fromtimestamp(entry["exp"], tz=UTC),
            obtained_at=datetime.fromtimestamp(entry.get("obt", 0), tz=UTC),
            reissues_same=bool(entry.get("same")),
            generation=entry.get("gen", 0),
        )

    def to_cache(self, row, *, read_at: float) -> None:
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
        cache_write_fenced(self.cache_key, entry, read_at=read_at, ttl=ttl)

    # --- reading

    def usable_value(self, row, *, rejected: str | None, asked_at: datetime) -> str:
        """Return the row's value if it may be served, else "" (opened once)."""
        value = row.value if row.value_sealed else ""
        if not value or row.expires_at is None:
            return ""
        # A re-issued value is served to its last second (WeCom would hand back the
        # same one anyway); any other only with MIN_SERVE_LIFE left.
        floor = timedelta(seconds=1) if row.reissues_same else MIN_SERVE_LIFE
        if row.expires_at - timezone.now() < floor:
            return ""
        if rejected is not None and value == rejected:
            # The caller saw WeCom reject this very value. It is usable only if somebody
            # refetched it after the caller asked (WeCom may hand back the same value).
            fresh = row.obtained_at is not None and row.obtained_at >= asked_at
            return value if fresh else ""
        return value

    def in_cooldown(self, row) -> bool:
        return (
            row.forced_refresh_at is not None
            and timezone.now() - row.forced_refresh_at < forced_refresh_cooldown()
        )

    def get(self, *, rejected: str | None = None) -> TokenValue:
        """Return a usable value; fetch it (once, however many ask) when there is none.

        ``rejected``: a value WeCom just refused. If it is still the current one it is
        refetched (once per cool-down, however many callers report it); if it was
        already replaced, the current value is returned without calling WeCom.
        """
        asked_at = timezone.now()
        cached = self.from_cache()
        if cached is not None and (
            value := self.usable_value(cached, rejected=rejected, asked_at=asked_at)
        ):
            return TokenValue(value, cached.expires_at)
        read_at = time.time()
        row = self.load_row()
        if value := self.usable_value(row, rejected=rejected, asked_at=asked_at):
            self.to_cache(row, read_at=read_at)
            return TokenValue(value, row.expires_at)

        def still_needed(current) -> bool:
            if self.usable_value(current, rejected=rejected, asked_at=asked_at):
                return False
            # Reported again within the cool-down: one forced call per period is all a
            # credential gets; every other reporter is handed the current value.
            return not (
                rejected is not None
                and self.in_cooldown(current)
                and self.usable_value(current, rejected=None, asked_at=asked_at)
            )

        return self.refresh(still_needed=still_needed, reason="rejected" if rejected else "demand")

    def check_backoff(self, row) -> None:
        now = timezone.now()
        if row.retry_not_before is not None and row.retry_not_before > now:
            wait = (row.retry_not_before - now).total_seconds()
            raise CredentialBackoff(
                f"{row.owner_key}: the last fetch failed ({row.last_error}); retrying later",
                retry_after=int(wait) + 1,
                flagged=row.flagged,
                errcode=errcode_of(row.last_error),
            )

    # --- fetching

    def refresh(self, *, still_needed: Callable, reason: str) -> TokenValue | None:
        with credential_lock(self.lock_key):
            read_at = time.time()
            row = self.model.objects.get(owner_key=self.key)
            if not still_needed(row):
                # Another caller or worker fetched it while we waited for the lock.
                self.to_cache(row, read_at=read_at)
                if row.value_sealed and row.expires_at:
                    return TokenValue(row.value, row.expires_at)
                return None
            if reason != "rejected" or row.flagged:
                # A rejection report may retry a system failure at once (the cool-down
                # caps it); nobody retries a credential failure before its backoff ends.
                self.check_backoff(row)
            if row.reissues_same and row.value_sealed and row.expires_at:
                # Our expiry of a re-issued value is counted from before the call;
                # WeCom's may be a moment later. Asking inside it gets the dying value.
                wait = (row.expires_at + REISSUE_GRACE - timezone.now()).total_seconds()
                if 0 < wait <= REISSUE_GRACE.total_seconds() and reason != "rejected":
                    time.sleep(wait)
            generation = row.generation
            started = timezone.now()
            if reason == "rejected":
                # Bookkeeping only (no generation bump): starts the cool-down.
                self.model.objects.filter(pk=row.pk).update(forced_refresh_at=started)
            kind = self.kind_label(row)
            clock = time.monotonic()
            try:
                grant = self.fetch()
            except (WeComError, CredentialUnavailable) as exc:
                failure = self.classify(exc)
                delay = self.record_failure(row, exc, failure, reason=reason)
                _observe(kind, "error", time.monotonic() - clock)
                errcode = getattr(exc, "errcode", None)
                if failure is Failure.CREDENTIAL:
                    # Products see the backoff (503 + Retry-After), not WeCom's refusal.
                    raise CredentialBackoff(
                        f"{self.key}: WeCom refused the credential (errcode {errcode})",
                        retry_after=delay,
                        flagged=True,
                        errcode=errcode,
                    ) from exc
                if failure is Failure.UPSTREAM:
                    raise CredentialBackoff(
                        f"{self.key}: what it is fetched with is unavailable ({exc})",
                        retry_after=delay,
                        errcode=errcode,
                    ) from exc
                raise
            _observe(kind, "ok", time.monotonic() - clock)
            return self.store(row, grant, started=started, generation=generation)

    def store(self, row, grant, *, started: datetime, generation: int) -> TokenValue:
        """Store ``grant`` if the row is still at ``generation`` (the one it was fetched under).

        Refused when anything wrote the row since (an invalidation, another writer): the
        grant is then dropped and never served; the caller gets the row's current value
        if it is usable, else CredentialUnavailable.
        """
        remember_secret(grant.value)
        now = timezone.now()
        # Count the lifetime from before the call: the value may be older than our answer.
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
        fresh = self.model(owner_key=row.owner_key)
        fresh.value = grant.value
        read_at = time.time()
        updated = self.model.objects.filter(pk=row.pk, generation=generation).update(
            value_sealed=fresh.value_sealed,
            expires_at=expires_at,
            obtained_at=now,
            reissues_same=reissues,
            generation=F("generation") + 1,
            last_refresh_at=now,
            last_refresh_ok=True,
            last_error="",
            consecutive_failures=0,
            retry_not_before=None,
            flagged=False,
            **{self.count_field: F(self.count_field) + 1},
            **self.store_extra(expires_at=expires_at, lifetime=lifetime, reissues=reissues),
        )
        row.refresh_from_db()
        if not updated:
            logger.info(
                "%s: the row moved on while fetching (generation %s → %s); dropped",
                row.owner_key,
                generation,
                row.generation,
            )
            value = self.usable_value(row, rejected=None, asked_at=now)
            if not value:
                raise CredentialUnavailable(f"{row.owner_key} was invalidated during its fetch")
            return TokenValue(value, row.expires_at)
        self.to_cache(row, read_at=read_at)
        return TokenValue(row.value, row.expires_at)

    def record_failure(self, row, exc: Exception, failure: Failure, *, reason: str) -> int:
        """Remember the failure on the row with its backoff; return the backoff in seconds."""
        # The class and errcode only: errmsg is scrubbed, but ids are all ops need here.
        errcode = getattr(exc, "errcode", None)
        summary = type(exc).__name__ + (f" errcode={errcode}" if errcode is not None else "")
        now = timezone.now()
        if isinstance(exc, WeComThrottled):
            # Our own outbound ceiling (wecom/ratelimit.py), not a failure: WeCom was never
            # asked. No backoff (a product read must not get 503 because beat was
            # throttled), no failure count; a scheduled refresh is looked at again later.
            if hasattr(self.model, "refresh_after"):
                later = now + timedelta(seconds=jittered(10, low=0.5, high=1.5))
                self.model.objects.filter(pk=row.pk).update(refresh_after=later)
            logger.info("fetch of %s deferred (%s): %s", row.owner_key, reason, summary)
            return 0
        delay = backoff_seconds(failure, row.consecutive_failures + 1)
        updates = {
            "last_refresh_at": now,
            "last_refresh_ok": False,
            "last_error": summary[:300],
            "consecutive_failures": F("consecutive_failures") + 1,
            **self.failure_extra(failure, delay=delay, now=now),
        }
        if failure in FLAGGING:
            updates["flagged"] = True
        if delay:
            updates["retry_not_before"] = now + timedelta(seconds=delay)
        # Bookkeeping only: the generation is not bumped (the value, if any, is unchanged).
        self.model.objects.filter(pk=row.pk).update(**updates)
        logger.warning(
            "fetch failed for %s (%s, %s): %s", row.owner_key, reason, failure.value, summary
        )
        if failure in FLAGGING:
            _alert(self.kind_label(row), errcode)
        self.after_failure(failure, exc)
        return int(delay) + 1


def invalidate_rows(queryset, *, cache_prefix: str, **extra) -> None:
    """Forget the values of ``queryset``'s rows: bump generations, fence the Redis copies.

    A fetch in flight cannot store (or serve) its value afterwards. The backoff is
    cleared too: a new permanent code or secret deserves a fresh try.
    """
    keys = list(queryset.values_list("owner_key", flat=True))
    queryset.update(
        value_sealed="",
        expires_at=None,
        obtained_at=None,
        reissues_same=False,
        retry_not_before=None,
        flagged=False,
        generation=F("generation") + 1,
        **extra,
    )
    for key in keys:
        cache_fence(f"{cache_prefix}:{key}")
