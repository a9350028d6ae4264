"""Provider, suite and corp access tokens: always fresh, fetched once however many ask.

The lock, the re-check, the fenced Redis copy, the compare-and-set on the generation,
the backoff by error class and the forced-refresh cool-down are tenants.fetching's
(shared with the JS-SDK tickets); the rows, their keys and their invalidation are
tenants.credential_rows' (re-exported here). This module says how a token is fetched,
which errcodes of which call mean "this credential is wrong", and when beat renews it.

Beat renews tokens ahead of expiry, once per window (``token_refresh_scheduled``).
When WeCom hands back the value we hold (same token while valid), the token is served
to its real expiry and fetched again only after it (``reissues_same``). A request only
refreshes when it finds no usable token, or when WeCom rejected the one it has
(``rejected``): then the token is refreshed only if it is still the current one, at
most once per FORCED_REFRESH_COOLDOWN. A failed fetch is remembered with a backoff by
error class (``retry_not_before``): meanwhile no WeCom call is made and callers get
CredentialBackoff (the API answers 503 with Retry-After).
"""

from __future__ import annotations

import logging
import random
import time  # noqa: F401 (tests read credentials.time)
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from django.utils import timezone

from tenants import fetching
from tenants.client import wecom_client
from tenants.credential_rows import CACHE_PREFIX
from tenants.credential_rows import TENANT_INVALIDATION_HOOKS  # noqa: F401 (re-exported)
from tenants.credential_rows import credential_row
from tenants.credential_rows import owner_key
from tenants.credential_rows import token_backoff_clear  # noqa: F401 (re-exported)
from tenants.credential_rows import token_invalidate  # noqa: F401 (re-exported)
from tenants.fetching import MIN_SERVE_LIFE  # noqa: F401 (re-exported: the API's promise)
from tenants.fetching import REISSUE_GRACE
from tenants.fetching import AuthorizationInactive
from tenants.fetching import CredentialBackoff  # noqa: F401 (re-exported)
from tenants.fetching import CredentialUnavailable
from tenants.fetching import Failure
from tenants.fetching import Fetcher
from tenants.fetching import TokenValue
from tenants.fetching import cache_fence  # noqa: F401 (re-exported)
from tenants.fetching import cache_read_fenced  # noqa: F401 (re-exported)
from tenants.fetching import cache_write_fenced  # noqa: F401 (re-exported)
from tenants.fetching import credential_lock  # noqa: F401 (re-exported)
from tenants.fetching import forced_refresh_cooldown  # noqa: F401 (re-exported)
from tenants.models import SUITE_TICKET_MAX_AGE
from tenants.models import Authorization
from tenants.models import CredentialToken
from tenants.models import Provider
from tenants.models import Suite
from tenants.transitions import authorization_suspend
from wecom.client import AccessToken
from wecom.endpoints import TokenKind
from wecom.errors import WeComCorpGone
from wecom_provider.backoff import jittered

logger = logging.getLogger(__name__)

# Beat renews a token when 5–8 % of its life is left (jittered per refresh so a fleet
# of tokens obtained together spreads out). 7200 s tokens are renewed 360–576 s before
# expiry (above MIN_SERVE_LIFE plus a beat tick): at most 1 + 86400 / 6624 → 14 calls a
# day. A credential whose WeCom hands back the same value is renewed only after expiry.
REFRESH_AHEAD = (0.05, 0.08)


class SuiteTicketUnavailable(CredentialUnavailable):
    """The suite has no ticket younger than 30 minutes: wait for WeCom's next push."""


# Errcodes meaning the credential itself is wrong or dead, per call (protocol §5, §9);
# the corp-gone family (40084, 48004, 301007, …) is a class of its own. 40082/42009/
# 40014 are not here: they refuse the *token in the query string*, which for
# get_corp_token is the suite token (the client refreshes it and retries once; if it
# still fails, the corp is backed off briefly, not flagged).
PROVIDER_ERRCODES = frozenset({40001, 40013, 40091})  # get_provider_token
SUITE_ERRCODES = frozenset({40013, 40080, 40083, 40086})  # get_suite_token
# get_corp_token: a dead permanent code is the corp-gone family (40084); a secret-class
# refusal (40001/40091) of what we sent is the credential's too.
CORP_ERRCODES = frozenset({40001, 40013, 40086, 40091})
CUSTOMIZED_ERRCODES = frozenset({40001, 40013, 40091})  # 代开发 gettoken (§5.4: IP ban)
CREDENTIAL_ERRCODES = PROVIDER_ERRCODES | SUITE_ERRCODES | CORP_ERRCODES | CUSTOMIZED_ERRCODES


class TokenFetcher(Fetcher):
    """A provider, suite or corp access token (one CredentialToken row)."""

    model = CredentialToken
    cache_prefix = CACHE_PREFIX
    count_field = "refresh_count"

    def __init__(self, owner=None, *, key: str | None = None) -> None:
        super().__init__(key or owner_key(owner))
        self.owner = owner

    def kind_label(self, row) -> str:
        return row.kind

    @property
    def credential_errcodes(self) -> frozenset[int]:  # type: ignore[override]
        if isinstance(self.owner, Provider):
            return PROVIDER_ERRCODES
        if isinstance(self.owner, Suite):
            return SUITE_ERRCODES
        if self.owner is not None and self.owner.suite.is_customized:
            return CUSTOMIZED_ERRCODES
        return CORP_ERRCODES

    def load_row(self) -> CredentialToken:
        return credential_row(self.owner)

    def fetch(self) -> AccessToken:
        return _fetch(self.owner)  # looked up at call time (tests wrap it)

    def classify(self, exc: Exception) -> Failure:
        if isinstance(exc, SuiteTicketUnavailable):
            return Failure.WAIT
        if isinstance(exc, WeComCorpGone) and not isinstance(self.owner, Authorization):
            return Failure.CREDENTIAL
        return super().classify(exc)

    def store_extra(self, *, expires_at: datetime, lifetime: timedelta, reissues: bool) -> dict:
        if reissues:
            refresh_after = expires_at + REISSUE_GRACE
        else:
            refresh_after = expires_at - lifetime * random.uniform(*REFRESH_AHEAD)
        return {"refresh_after": refresh_after}

    def failure_extra(self, failure: Failure, *, delay: float, now: datetime) -> dict:
        if failure is Failure.INACTIVE:
            return {"refresh_enabled": False}
        if failure is Failure.WAIT:
            # No WeCom call was made; look again when WeCom's next push may have come (a
            # demand read with a new ticket need not wait: no retry_not_before).
            return {"refresh_after": now + timedelta(seconds=jittered(60, low=1.0, high=1.2))}
        extra = {"refresh_after": now + timedelta(seconds=delay)} if delay else {}
        if failure is Failure.CORP_GONE:
            extra["refresh_enabled"] = False
        return extra

    def after_failure(self, failure: Failure, exc: Exception) -> None:
        if failure is Failure.CORP_GONE and isinstance(self.owner, Authorization):
            authorization_suspend(
                authorization=self.owner,
                reason=f"WeCom errcode {getattr(exc, 'errcode', None)}: corp unavailable",
                actor="system",
            )


# --- reading ------------------------------------------------------------------------


@dataclass
class CredentialSource:
    """A TokenSource (wecom.client) reading one credential through ``token_get``."""

    kind: TokenKind
    owner: Provider | Suite | Authorization

    def get(self) -> str:
        return token_get(self.owner).value

    def refresh(self, rejected: str) -> str:
        return token_get(self.owner, rejected=rejected).value


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
    return TokenFetcher(owner).get(rejected=rejected)


def _to_cache(row: CredentialToken, *, read_at: float) -> None:
    """Cache ``row`` as read from the database at ``read_at`` (taken before the read)."""
    TokenFetcher(key=row.owner_key).to_cache(row, read_at=read_at)


def _store(
    row: CredentialToken, grant: AccessToken, *, started: datetime, generation: int
) -> TokenValue:
    """Store ``grant`` if the row is still at ``generation`` (see Fetcher.store)."""
    return TokenFetcher(key=row.owner_key).store(row, grant, started=started, generation=generation)


def _refresh(owner, key: str, *, still_needed, reason: str) -> TokenValue | None:
    return TokenFetcher(owner, key=key).refresh(still_needed=still_needed, reason=reason)


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
    # The suite token travels in the query string: a 40082/42009 here is the suite's,
    # and the client force-refreshes it (single flight, cool-down) and retries once.
    suite_api = client.suite(CredentialSource(TokenKind.SUITE, authorization.suite))
    return suite_api.get_corp_token(
        auth_corpid=authorization.corp.corpid, permanent_code=authorization.permanent_code
    )


def suite_ticket_current(suite: Suite) -> str:
    """Return the suite's newest ticket if WeCom still accepts it (< 30 min old)."""
    suite = Suite.objects.get(pk=suite.pk)
    age = suite.ticket_age()
    if age is None or age > SUITE_TICKET_MAX_AGE:
        raise SuiteTicketUnavailable(f"suite {suite.suite_id} has no ticket younger than 30 min")
    return suite.suite_ticket


def _alert(kind: str, errcode) -> None:
    fetching._alert(kind, errcode)


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
