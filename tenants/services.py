"""Writes for the tenants app: registration, tickets, install, sync and lifecycle.

Views, tasks, admin actions, commands and callback handlers only call these. WeCom
calls happen outside transactions (no row lock is held while waiting on the network).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants import credentials
from tenants import install_links
from tenants import lifecycle
from tenants.feed import feed_publish
from tenants.lifecycle import EventIgnored
from tenants.lifecycle import EventSuperseded
from tenants.lifecycle import LifecycleEvent
from tenants.models import AuthCodeClaim
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import Corp
from tenants.models import CredentialToken
from tenants.models import FeedEvent
from tenants.models import Provider
from tenants.models import Suite
from tenants.wecom import corp_api
from tenants.wecom import provider_api
from tenants.wecom import suite_api
from wecom.errors import WeComApiError
from wecom.errors import WeComBusy
from wecom.errors import WeComCorpGone
from wecom.errors import WeComError
from wecom.errors import WeComTransportError
from wecom.ratelimit import background_calls

logger = logging.getLogger(__name__)

# A claim left "claimed" this long belongs to a process that died mid-exchange.
STALE_CLAIM_AFTER = timedelta(minutes=2)
CLAIM_WAIT_SECONDS = 15.0


# --- registration -------------------------------------------------------------------


def provider_register(
    *, corpid: str, provider_secret: str, callback_token: str, encoding_aes_key: str, name: str = ""
) -> tuple[Provider, bool]:
    """Create or update the provider; return it and whether it was created."""
    with transaction.atomic():
        provider = Provider.objects.select_for_update().filter(corpid=corpid).first()
        created = provider is None
        if created:
            provider = Provider(corpid=corpid)
        provider.name = name or provider.name
        provider.provider_secret = provider_secret
        provider.callback_token = callback_token
        provider.encoding_aes_key = encoding_aes_key
        provider.save()
    # A new secret makes the cached provider token suspect.
    credentials.token_invalidate(provider)
    return provider, created


def suite_register(
    *,
    provider: Provider,
    suite_id: str,
    secret: str,
    callback_token: str,
    encoding_aes_key: str,
    kind: str = Suite.Kind.THIRD_PARTY,
    name: str = "",
) -> tuple[Suite, bool]:
    """Create or update a suite (or 代开发 template); return it and whether it was created."""
    with transaction.atomic():
        suite = Suite.objects.select_for_update().filter(suite_id=suite_id).first()
        created = suite is None
        if created:
            suite = Suite(suite_id=suite_id)
        suite.provider = provider
        suite.kind = kind
        suite.name = name or suite.name
        suite.secret = secret
        suite.callback_token = callback_token
        suite.encoding_aes_key = encoding_aes_key
        suite.save()
    credentials.token_invalidate(suite)
    return suite, created


def callback_urls(
    *, provider: Provider | None = None, suite: Suite | None = None
) -> dict[str, str]:
    """Return the URLs to paste into WeCom's console for a provider or a suite."""
    base = settings.PUBLIC_BASE_URL
    urls: dict[str, str] = {}
    if provider is not None:
        urls["system event URL (系统事件接收URL)"] = f"{base}/callbacks/provider/{provider.corpid}/"
    if suite is not None:
        urls["command URL (指令回调URL)"] = f"{base}/callbacks/suite/{suite.suite_id}/command/"
        urls["data URL (数据回调URL)"] = f"{base}/callbacks/suite/{suite.suite_id}/data/"
        urls["install redirect (安装完成回调)"] = f"{base}/install/{suite.suite_id}/done/"
    return urls


# --- suite ticket -------------------------------------------------------------------


def suite_ticket_store(*, suite_id: str, ticket: str, timestamp: int) -> bool:
    """Store a pushed suite_ticket unless a newer one is stored; return True if stored.

    Compare-and-set on WeCom's TimeStamp: pushes can arrive out of order (retries,
    replays), and an older ticket must never replace a newer one. Two tickets of the
    same second (a manual re-push) are both valid; the later arrival wins.
    """
    suite = Suite.objects.get(suite_id=suite_id)
    holder = Suite(suite_id=suite.suite_id)
    holder.suite_ticket = ticket
    stored = (
        Suite.objects.filter(pk=suite.pk)
        .filter(Q(suite_ticket_timestamp__isnull=True) | Q(suite_ticket_timestamp__lte=timestamp))
        .update(
            suite_ticket_sealed=holder.suite_ticket_sealed,
            suite_ticket_timestamp=timestamp,
            suite_ticket_received_at=timezone.now(),
        )
    )
    if stored:
        # A suite without a usable token gets one as soon as a ticket exists.
        row = credentials.credential_row(suite)
        if not row.value_sealed or row.expires_at is None or row.expires_at <= timezone.now():
            CredentialToken.objects.filter(pk=row.pk).update(
                refresh_after=timezone.now(), refresh_enabled=True
            )
    return bool(stored)


# --- install ------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallLink:
    url: str
    expires_at: datetime


class InstallLinkInvalid(ValueError):
    """The install link cannot be made with these options (message names the rule)."""


# get_customized_auth_url takes a state of at most 32 bytes (protocol §5.5).
CUSTOMIZED_STATE_MAX = 32


def install_link_create(*, suite: Suite, state: str = "", test: bool = False) -> InstallLink:
    """Return the link that installs ``suite``.

    A third-party suite: WeCom's install page with a fresh pre-auth code (§4.1).
    ``state`` is the product's own (≤ ``install_links.PRODUCT_STATE_MAX`` letters or
    digits); WeCom gets it signed, with an expiry. ``test`` (测试授权) is for the
    admin's signed test-install links only.

    A 代开发 template: the authorization link of ``get_customized_auth_url`` (§4.4,
    §5.5), whose scan pushes create_auth to the template's command URL. Its state goes
    unsigned: 32 bytes leave no room for a MAC, and only our provider token can make
    such a link, so the state WeCom hands back is one we put in.
    """
    if suite.is_customized:
        return _customized_link_create(suite=suite, state=state, test=test)
    signed_state = install_links.state_sign(suite_id=suite.suite_id, product_state=state)
    api = suite_api(suite)
    pre_auth = api.get_pre_auth_code()
    if test:
        # 测试授权: lets an unpublished app be installed by a test corp (protocol §4.3).
        api.set_session_info(pre_auth_code=pre_auth.value, auth_type=1)
    query = urlencode(
        {
            "suite_id": suite.suite_id,
            "pre_auth_code": pre_auth.value,
            "redirect_uri": f"{settings.PUBLIC_BASE_URL}/install/{suite.suite_id}/done/",
            "state": signed_state,
        }
    )
    return InstallLink(
        url=f"{settings.WECOM_INSTALL_BASE}/3rdapp/install?{query}",
        expires_at=timezone.now() + timedelta(seconds=pre_auth.expires_in),
    )


def _customized_link_create(*, suite: Suite, state: str, test: bool) -> InstallLink:
    if test:
        raise InstallLinkInvalid("a 代开发 template has no test install (set_session_info)")
    if len(state.encode()) > CUSTOMIZED_STATE_MAX:
        raise InstallLinkInvalid(
            f"a 代开发 authorization link takes a state of at most {CUSTOMIZED_STATE_MAX} bytes"
        )
    answer = provider_api(suite.provider).get_customized_auth_url(
        templateid_list=[suite.suite_id], state=state or None
    )
    return InstallLink(
        url=str(answer["qrcode_url"]),
        expires_at=timezone.now() + timedelta(seconds=int(answer.get("expires_in") or 864000)),
    )


class InstallInProgress(Exception):
    """Another process is exchanging this auth code right now; try again shortly."""


class InstallFailed(Exception):
    """The auth code could not be exchanged (message has no secret)."""


def _code_digest(suite: Suite, auth_code: str) -> str:
    return hashlib.sha256(f"{suite.suite_id}|{auth_code}".encode()).hexdigest()


def authorization_install(
    *,
    suite: Suite,
    auth_code: str,
    source: str,
    state: str = "",
    wait: bool = True,
    event: LifecycleEvent | None = None,
    follow_up: Literal["now", "later"] = "now",
) -> Authorization:
    """Exchange ``auth_code`` for a permanent code exactly once; return the authorization.

    ``follow_up``: when to read the new install's auth info and corp token (see
    authorization_install_follow_up): "now", if the outbound ceiling has room (an admin
    waits on the install page), else later; "later", always in tenants.install_follow_up,
    so the worker process is free for the next auth code at once (the create_auth path:
    a burst of installs arrives there).

    The install redirect, the create_auth callback and redelivered tasks may all
    carry the same code. The unique claim row decides who calls WeCom; everyone
    else waits for (or reads) the winner's result.

    ``event`` places the install in event time (tenants/lifecycle.py); without one it
    is timed by our clock. Raises EventSuperseded when the authorization already
    reflects a newer event: the code is exchanged (it is single use), nothing changes.
    """
    event = event or LifecycleEvent(
        "reset_permanent_code" if source == "reset" else "redirect",
        int(time.time()),
        wecom_clock=False,
    )
    digest = _code_digest(suite, auth_code)
    claim = _claim(suite, digest, source)
    if claim is None:
        authorization = _await_claim(digest, wait=wait)
        _check_replay(authorization, event)
        return authorization
    try:
        grant = suite_api(suite).get_permanent_code(auth_code=auth_code)
    except WeComApiError as exc:
        if exc.retryable:
            AuthCodeClaim.objects.filter(pk=claim.pk).delete()
        else:
            # WeCom refused the code (used, expired, foreign): final, never retried.
            _fail_claim(claim, f"{type(exc).__name__} errcode={exc.errcode}")
        raise
    except BaseException:
        # No answer from WeCom (transport, no suite token, a crash): the code may still
        # be unused, so release the claim and let a retry try again.
        AuthCodeClaim.objects.filter(pk=claim.pk).delete()
        raise
    authorization, superseded = _install_apply(
        suite=suite, grant=grant, source=source, state=state, event=event, claim=claim
    )
    if superseded is not None:
        raise superseded
    # Network work after the commit: a failure here leaves a live tenant that a later
    # task or the reconciliation completes, never a lost permanent code.
    if follow_up != "now" or not authorization_install_follow_up(authorization=authorization):
        _follow_up_later(authorization, countdown=0 if follow_up != "now" else None)
    return authorization


def authorization_install_follow_up(*, authorization: Authorization) -> bool:
    """Read a new install's auth info (edition, admins, permissions) and fetch its corp
    token; return False when that must be tried again later (no room under the outbound
    ceiling, WeCom unreachable).

    The permanent code is already stored; these reads can wait, an auth code cannot (it
    dies 10 minutes after the install). So they are background calls that take no slot
    a waiting call needs and wait for none (wait=0): in a burst of installs every slot
    of WECOM_MAX_CALLS_PER_SECOND goes to exchanging codes first, and the follow-ups of
    all of them run afterwards (tenants.install_follow_up).
    """
    try:
        with background_calls(wait=0):
            authorization_sync(authorization=authorization, with_edition=True, record_diff=False)
            credentials.token_get(authorization)
    except credentials.AuthorizationInactive:
        return True  # cancelled or suspended meanwhile: nothing to complete
    except (WeComTransportError, WeComBusy, credentials.CredentialUnavailable) as exc:
        # Throttled by our own ceiling (WeComThrottled is a transport error that never
        # left), or a passing failure: later.
        logger.info("follow-up of install %s deferred: %s", authorization, type(exc).__name__)
        return False
    except WeComError as exc:
        # WeCom's final answer (the corp is gone: authorization_sync suspended it).
        logger.warning("follow-up of install %s failed: %s", authorization, type(exc).__name__)
    return True


def follow_up_delay(attempt: int) -> float:
    """Seconds before a deferred follow-up is tried again (``attempt`` ≥ 1): long enough
    for a burst of exchanges to move on, doubling to a minute, with jitter. Short
    against anything a product could notice: a product that reads the corp token first
    fetches it itself."""
    return min(60.0, 5.0 * 2**attempt) * random.uniform(0.8, 1.2)


def _follow_up_later(authorization: Authorization, *, countdown: float | None = None) -> None:
    from tenants.tasks import install_follow_up

    try:
        install_follow_up.apply_async(
            args=[authorization.pk],
            countdown=follow_up_delay(1) if countdown is None else countdown,
        )
    except Exception as exc:  # the broker: the reconciliation completes the install
        logger.warning("follow-up of %s not queued: %s", authorization, type(exc).__name__)


# Decisions that needed WeCom's answer are re-made when the row changed meanwhile; after
# this many races the install is applied (WeCom granted the code a moment ago).
DECISION_ATTEMPTS = 5


def _install_apply(
    *, suite: Suite, grant: dict, source: str, state: str, event: LifecycleEvent, claim
) -> tuple[Authorization, EventSuperseded | None]:
    """Store the grant unless a newer event is stored; return (row, why it was not)."""
    corpid = (grant.get("auth_corp_info") or {})["corpid"]
    for attempt in range(DECISION_ATTEMPTS):
        current = (
            Authorization.objects.select_related("suite", "corp")
            .filter(suite=suite, corp__corpid=corpid)
            .first()
        )
        decision = lifecycle.verdict(current, event)
        if decision == lifecycle.TIE:
            try:
                decision = lifecycle.resolve_tie(
                    current, event, granted_code=grant["permanent_code"]
                )
            except (WeComError, credentials.CredentialUnavailable) as exc:
                # Undecidable right now, but the code is exchanged: keep it (no tenant
                # is lost by an answer we could not get).
                logger.warning("tie of %s unresolved (%s): applied", event.describe(), exc)
                decision = lifecycle.APPLY
        last = attempt == DECISION_ATTEMPTS - 1
        try:
            with transaction.atomic():
                result = _authorization_upsert(
                    suite=suite,
                    grant=grant,
                    source=source,
                    state=state,
                    event=event,
                    decision=decision,
                    seen=None if last else lifecycle.snapshot(current),
                )
                if result is None:
                    continue  # the row changed while WeCom was asked: decide again
                authorization, superseded = result
                AuthCodeClaim.objects.filter(pk=claim.pk).update(
                    status=AuthCodeClaim.Status.EXCHANGED, authorization=authorization
                )
        except IntegrityError:
            if last:
                raise
            continue  # another event created the row first
        return authorization, superseded
    raise AssertionError("unreachable: the last attempt always decides")


def _check_replay(authorization: Authorization, event: LifecycleEvent) -> None:
    """Raise EventSuperseded if a replayed install was overtaken by a newer event."""
    if not event.wecom_clock:
        return  # a browser's second visit: nothing to order
    if authorization.event_type in lifecycle.OUR_CLOCK:
        # Timed by our clock (the redirect that exchanged this very code, typically, as
        # the create_auth carrying it raced it): no WeCom time to say it was overtaken.
        return
    stored = authorization.event_timestamp
    cancelled = authorization.status == Authorization.Status.CANCELLED
    if stored is not None and (
        event.timestamp < stored or (event.timestamp == stored and cancelled)
    ):
        raise EventSuperseded(
            "older",
            lifecycle.superseded_message(
                authorization, event, "its code was exchanged, and a newer event followed"
            ),
        )


def _claim(suite: Suite, digest: str, source: str) -> AuthCodeClaim | None:
    """Return the new claim if this process owns the exchange, else None."""
    try:
        with transaction.atomic():
            return AuthCodeClaim.objects.create(suite=suite, code_digest=digest, source=source)
    except IntegrityError:
        pass
    # Take over a claim whose owner died mid-exchange (conditional update: one winner).
    stale = timezone.now() - STALE_CLAIM_AFTER
    taken = AuthCodeClaim.objects.filter(
        code_digest=digest, status=AuthCodeClaim.Status.CLAIMED, updated_at__lt=stale
    ).update(updated_at=timezone.now(), source=source)
    return AuthCodeClaim.objects.get(code_digest=digest) if taken else None


def _await_claim(digest: str, *, wait: bool) -> Authorization:
    deadline = time.monotonic() + (CLAIM_WAIT_SECONDS if wait else 0)
    while True:
        claim = AuthCodeClaim.objects.select_related("authorization").get(code_digest=digest)
        if claim.status == AuthCodeClaim.Status.EXCHANGED and claim.authorization:
            return claim.authorization
        if claim.status == AuthCodeClaim.Status.FAILED:
            raise InstallFailed(f"auth code exchange failed earlier: {claim.error}")
        if time.monotonic() >= deadline:
            raise InstallInProgress("the auth code is being exchanged by another process")
        time.sleep(0.1)


def _fail_claim(claim: AuthCodeClaim, error: str) -> None:
    AuthCodeClaim.objects.filter(pk=claim.pk).update(
        status=AuthCodeClaim.Status.FAILED, error=error[:300]
    )


def _corp_defaults(info: dict) -> dict:
    def text(key: str) -> str:
        value = info.get(key)
        return "" if value is None else str(value)

    return {
        key: value
        for key, value in {
            "name": text("corp_name"),
            "full_name": text("corp_full_name"),
            "corp_type": text("corp_type"),
            "subject_type": info.get("subject_type"),
            "scale": text("corp_scale"),
            "industry": text("corp_industry"),
            "sub_industry": text("corp_sub_industry"),
            "user_max": info.get("corp_user_max"),
            "verified_end_time": info.get("verified_end_time"),
            "square_logo_url": text("corp_square_logo_url"),
        }.items()
        if value not in (None, "")
    }


def _corp_upsert(info: dict) -> Corp:
    corpid = info["corpid"]
    corp, _ = Corp.objects.get_or_create(corpid=corpid)
    for key, value in _corp_defaults(info).items():
        setattr(corp, key, value)
    corp.raw = {**corp.raw, **info}
    corp.save()
    return corp


def _authorization_upsert(
    *,
    suite: Suite,
    grant: dict,
    source: str,
    state: str,
    event: LifecycleEvent,
    decision: str,
    seen: tuple | None,
) -> tuple[Authorization, EventSuperseded | None] | None:
    """Apply (or record as superseded) an install grant under the row lock.

    ``seen``: the row the decision was made on; None means "decided, apply as is".
    Returns None when the row changed since (the caller decides again).
    """
    corp = _corp_upsert(grant.get("auth_corp_info") or {})
    authorization = (
        Authorization.objects.select_for_update()
        .select_related("suite", "corp")
        .filter(suite=suite, corp=corp)
        .first()
    )
    if seen is not None and lifecycle.snapshot(authorization) != seen:
        return None
    if decision == lifecycle.SUPERSEDE and authorization is not None:
        superseded = _supersede(
            authorization,
            event,
            newer="a newer event is already applied",
            tie="a tie, and WeCom no longer accepts the permanent code it granted",
        )
        return authorization, superseded
    now = timezone.now()
    created = authorization is None
    if created:
        authorization = Authorization(suite=suite, corp=corp, authorized_at=now)
    previous = "" if created else authorization.status
    action = (
        "authorized"
        if created
        else ("permanent_code_reset" if source == "reset" else "reauthorized")
    )
    if source != "reset":
        authorization.authorized_at = now
        authorization.cancelled_at = None
        if previous == Authorization.Status.CANCELLED:
            # A new install: the old one's activity state went with it.
            authorization.activity = Authorization.Activity.NORMAL
            authorization.activity_effect_at = None
            authorization.agent_state = Authorization.AgentState.OPEN
            authorization.agent_state_effect_at = None
    authorization.status = Authorization.Status.ACTIVE
    authorization.status_reason = ""
    authorization.suspended_at = None
    authorization.permanent_code = grant["permanent_code"]
    authorization.event_timestamp = max(event.timestamp, authorization.event_timestamp or 0)
    authorization.event_type = event.type
    user = grant.get("auth_user_info") or {}
    if user:
        authorization.installer_userid = user.get("userid", "") or ""
        authorization.installer_open_userid = user.get("open_userid", "") or ""
        authorization.installer_name = user.get("name", "") or ""
    received = grant.get("state") or state
    if received and suite.is_customized:
        # 代开发: unsigned, but only a link we made can carry it (install_link_create).
        fits = received.isascii() and received.isalnum()
        authorization.state = received if fits and len(received) <= CUSTOMIZED_STATE_MAX else ""
    elif received:
        # Only a state our own install link signed (for this suite, unexpired) reaches
        # products; a hand-typed or replayed one is dropped rather than passed on.
        verified = install_links.state_verify(suite_id=suite.suite_id, state=received)
        if verified is None:
            logger.info("install of %s carried an unsigned or expired state", suite.suite_id)
        authorization.state = verified or ""
    authorization.save()
    entry = AuthorizationHistory.objects.create(
        authorization=authorization,
        action=action,
        from_status=previous,
        to_status=authorization.status,
        actor=source,
        detail={"event": event.type, "timestamp": event.timestamp},
    )
    _publish(authorization, entry)
    # New permanent code: the stored corp token (if any) belongs to the old one. Drop
    # the cached copy again after commit: a reader may have re-cached the old row between.
    credentials.token_invalidate(authorization)
    transaction.on_commit(lambda: credentials.token_invalidate(authorization))
    credential = credentials.credential_row(authorization)
    CredentialToken.objects.filter(pk=credential.pk).update(refresh_enabled=True)
    return authorization, None


def _supersede(
    authorization: Authorization, event: LifecycleEvent, *, newer: str, tie: str
) -> EventSuperseded:
    """Record on the history why ``event`` changed nothing; return the explanation.

    ``newer`` explains an event older than the stored one, ``tie`` one in the same second
    that WeCom's answer decided against.
    """
    older = lifecycle.verdict(authorization, event) == lifecycle.SUPERSEDE
    superseded = EventSuperseded(
        "older" if older else "tie",
        lifecycle.superseded_message(authorization, event, newer if older else tie),
    )
    _record_superseded(authorization, event, str(superseded))
    return superseded


def _record_superseded(authorization: Authorization, event: LifecycleEvent, message: str) -> None:
    """Explain, on the authorization's own history, an event that changed nothing."""
    AuthorizationHistory.objects.create(
        authorization=authorization,
        action="event_superseded",
        from_status=authorization.status,
        to_status=authorization.status,
        actor="callback" if event.wecom_clock else "system",
        detail={"event": event.type, "timestamp": event.timestamp, "reason": message[:300]},
    )


# --- sync, suspend, cancel ---------------------------------------------------------------


FEED_TYPES = {
    "authorized": "tenant.authorized",
    "reauthorized": "tenant.authorized",
    "permanent_code_reset": "tenant.changed",
    "changed": "tenant.changed",
    "suspended": "tenant.suspended",
    "resumed": "tenant.resumed",
    "cancelled": "tenant.cancelled",
    "edition_changed": "tenant.edition_changed",
}


def _publish(
    authorization: Authorization,
    entry: AuthorizationHistory,
    *,
    source_key: str = "",
    extra: dict | None = None,
) -> None:
    feed_publish(
        type=FEED_TYPES.get(entry.action, f"tenant.{entry.action}"),
        source_key=source_key or f"authorization-history:{entry.pk}",
        suite=authorization.suite,
        corp=authorization.corp,
        data={
            "suite_id": authorization.suite.suite_id,
            "corpid": authorization.corp.corpid,
            "status": authorization.status,
            "previous_status": entry.from_status,
            **(extra or {}),
        },
    )


def authorization_sync(
    *,
    authorization: Authorization,
    change_key: str | None = None,
    with_edition: bool = False,
    actor: str = "system",
    record_diff: bool = True,
) -> Authorization:
    """Re-read auth info, permissions and the admin list from WeCom; return the row.

    ``with_edition``: read the v1 get_auth_info, the call that carries edition_info
    (v2 does not, protocol §5.3); used on install, change_editon and by ops.
    ``change_key``: WeCom told us something changed (change_auth, identified by this
    key); the diff is recorded once in the history, on the row and on the feed. A
    re-read without one (reconcile, ops) records a diff only when it finds one.
    ``record_diff=False``: the first read of a new install (a reinstall differs from
    the install before it by design, which is no change to report).
    """
    authorization = Authorization.objects.select_related("suite", "corp").get(pk=authorization.pk)
    api = suite_api(authorization.suite)
    read = api.get_auth_info_v1 if with_edition else api.get_auth_info
    try:
        info = read(
            auth_corpid=authorization.corp.corpid, permanent_code=authorization.permanent_code
        )
    except WeComCorpGone as exc:
        authorization_suspend(
            authorization=authorization, reason=f"WeCom errcode {exc.errcode}", actor="system"
        )
        raise
    agents = (info.get("auth_info") or {}).get("agent") or []
    agent = agents[0] if agents else {}
    admins = permissions = None
    if authorization.is_active and agent:
        corp = corp_api(authorization)
        try:
            admins = corp.get_admin_list().get("admin", [])
        except (WeComError, credentials.CredentialUnavailable) as exc:
            logger.info("admin list of %s unavailable: %s", authorization, type(exc).__name__)
        try:
            permissions = list(corp.get_permissions().get("app_permissions") or [])
        except (WeComError, credentials.CredentialUnavailable) as exc:
            logger.info("permissions of %s unavailable: %s", authorization, type(exc).__name__)
    with transaction.atomic():
        if info.get("auth_corp_info"):
            _corp_upsert({"corpid": authorization.corp.corpid, **info["auth_corp_info"]})
        locked = (
            Authorization.objects.select_for_update()
            .select_related("suite", "corp")
            .get(pk=authorization.pk)
        )
        first_read = locked.auth_info_synced_at is None
        before = lifecycle.state_of(locked)
        locked.auth_info = info.get("auth_info") or {}
        locked.agent_id = agent.get("agentid")
        locked.auth_mode = agent.get("auth_mode")
        locked.is_customized_app = bool(agent.get("is_customized_app", False))
        if with_edition:
            # Only where WeCom gives it: none in the answer means no paid edition.
            locked.edition = lifecycle.edition_of(info, locked.agent_id)
        if admins is not None:
            locked.admin_list = admins
        if permissions is not None:
            locked.permissions = permissions
        locked.auth_info_synced_at = timezone.now()
        diff = lifecycle.change_diff(before, lifecycle.state_of(locked))
        record = bool(change_key) or (bool(diff) and not first_read and record_diff)
        key = change_key or ""
        if record and key and FeedEvent.objects.filter(source_key=key).exists():
            record = False  # this change_auth was recorded already (a redelivery)
        if record:
            locked.last_change = {
                "at": timezone.now().isoformat(),
                "source": key.split(":", 1)[0] if key else actor,
                "diff": diff,
            }
        locked.save()
        if record:
            entry = AuthorizationHistory.objects.create(
                authorization=locked,
                action="changed",
                from_status=locked.status,
                to_status=locked.status,
                actor=actor,
                detail={"diff": diff, **({"key": key} if key else {})},
            )
            _publish(locked, entry, source_key=key, extra={"diff": diff})
    return locked


def _transition(
    authorization: Authorization, *, to: str, action: str, reason: str, actor: str, **fields
) -> bool:
    with transaction.atomic():
        locked = Authorization.objects.select_for_update().get(pk=authorization.pk)
        if locked.status == to:
            return False
        previous = locked.status
        locked.status = to
        locked.status_reason = reason[:200]
        for key, value in fields.items():
            setattr(locked, key, value)
        locked.save()
        entry = AuthorizationHistory.objects.create(
            authorization=locked,
            action=action,
            from_status=previous,
            to_status=to,
            actor=actor,
            detail={"reason": reason[:200]} if reason else {},
        )
        _publish(locked, entry)
    authorization.refresh_from_db()
    return True


def authorization_suspend(*, authorization: Authorization, reason: str, actor: str) -> bool:
    """Suspend (corp dissolved, app disabled, or by ops); stop refreshing its token."""
    changed = _transition(
        authorization,
        to=Authorization.Status.SUSPENDED,
        action="suspended",
        reason=reason,
        actor=actor,
        suspended_at=timezone.now(),
    )
    CredentialToken.objects.filter(authorization=authorization).update(refresh_enabled=False)
    # Revocation bites at once: bump the token's and tickets' generations and fence their
    # cached copies, so no cache path in any process can serve them (resume refetches).
    credentials.token_invalidate(authorization)
    return changed


def authorization_resume(*, authorization: Authorization, actor: str) -> bool:
    """Resume a suspended authorization; its token is fetched again on next use."""
    if authorization.status != Authorization.Status.SUSPENDED:
        return False
    changed = _transition(
        authorization,
        to=Authorization.Status.ACTIVE,
        action="resumed",
        reason="",
        actor=actor,
        suspended_at=None,
    )
    CredentialToken.objects.filter(authorization=authorization).update(
        refresh_enabled=True, refresh_after=timezone.now()
    )
    return changed


def authorization_cancel(*, authorization: Authorization, actor: str) -> bool:
    """Mark cancelled (history kept), drop the dead permanent code and revoke tokens."""
    changed = _transition(
        authorization,
        to=Authorization.Status.CANCELLED,
        action="cancelled",
        reason="cancel_auth",
        actor=actor,
        cancelled_at=timezone.now(),
        permanent_code_sealed="",
    )
    credentials.token_invalidate(authorization)
    CredentialToken.objects.filter(authorization=authorization).update(refresh_enabled=False)
    return changed


# --- lifecycle events in event time (tenants/lifecycle.py) ------------------------------------


def authorization_cancel_event(*, suite: Suite, corpid: str, event: LifecycleEvent) -> str:
    """Apply a cancel_auth in event time; return what happened.

    Raises EventSuperseded when the authorization already reflects a newer event
    (a reinstall): its permanent code is never erased by an older cancel. A cancel
    for an authorization not seen yet (its create_auth still on its way) is kept as a
    cancelled row, so the older install cannot bring it back when it arrives.
    """
    for attempt in range(DECISION_ATTEMPTS):
        current = (
            Authorization.objects.select_related("suite", "corp")
            .filter(suite=suite, corp__corpid=corpid)
            .first()
        )
        decision = lifecycle.verdict(current, event)
        if decision == lifecycle.TIE:
            decision = lifecycle.resolve_tie(current, event)  # transient errors: retried
        last = attempt == DECISION_ATTEMPTS - 1
        try:
            with transaction.atomic():
                outcome = _cancel_apply(
                    suite=suite,
                    corpid=corpid,
                    event=event,
                    decision=decision,
                    seen=None if last else lifecycle.snapshot(current),
                )
        except IntegrityError:
            if last:
                raise
            continue
        if outcome is None:
            continue
        if isinstance(outcome, EventSuperseded):
            raise outcome
        authorization = Authorization.objects.get(suite=suite, corp__corpid=corpid)
        credentials.token_invalidate(authorization)
        CredentialToken.objects.filter(authorization=authorization).update(refresh_enabled=False)
        return outcome
    raise AssertionError("unreachable: the last attempt always decides")


def _cancel_apply(
    *, suite: Suite, corpid: str, event: LifecycleEvent, decision: str, seen: tuple | None
) -> str | EventSuperseded | None:
    authorization = (
        Authorization.objects.select_for_update()
        .select_related("suite", "corp")
        .filter(suite=suite, corp__corpid=corpid)
        .first()
    )
    if seen is not None and lifecycle.snapshot(authorization) != seen:
        return None
    if authorization is None:
        corp, _ = Corp.objects.get_or_create(corpid=corpid)
        now = timezone.now()
        authorization = Authorization.objects.create(
            suite=suite,
            corp=corp,
            status=Authorization.Status.CANCELLED,
            status_reason="cancel_auth",
            authorized_at=now,
            cancelled_at=now,
            event_timestamp=event.timestamp,
            event_type=event.type,
        )
        AuthorizationHistory.objects.create(
            authorization=authorization,
            action="cancelled",
            from_status="",
            to_status=authorization.status,
            actor="callback",
            detail={
                "event": event.type,
                "timestamp": event.timestamp,
                "reason": "cancel_auth arrived before any install of it was seen",
            },
        )
        return "cancelled before its install was seen"
    if decision == lifecycle.SUPERSEDE:
        return _supersede(
            authorization,
            event,
            newer="a newer install is already applied",
            tie="a tie, and WeCom still accepts the stored permanent code: the install is later",
        )
    if decision == lifecycle.DUPLICATE:
        return "already cancelled"
    previous = authorization.status
    authorization.event_timestamp = max(event.timestamp, authorization.event_timestamp or 0)
    authorization.event_type = event.type
    if previous == Authorization.Status.CANCELLED:
        # A cancel newer than the stored one (of an install we never saw): only the
        # clock moves, so that install cannot come back when it arrives.
        authorization.save(update_fields=["event_timestamp", "event_type", "updated_at"])
        return "already cancelled (clock moved to this newer cancel)"
    authorization.status = Authorization.Status.CANCELLED
    authorization.status_reason = "cancel_auth"
    authorization.cancelled_at = timezone.now()
    authorization.permanent_code_sealed = ""  # the dead code is not kept
    authorization.save()
    entry = AuthorizationHistory.objects.create(
        authorization=authorization,
        action="cancelled",
        from_status=previous,
        to_status=authorization.status,
        actor="callback",
        detail={"event": event.type, "timestamp": event.timestamp, "reason": "cancel_auth"},
    )
    _publish(authorization, entry)
    return "cancelled"


def authorization_change_event(*, authorization: Authorization, timestamp: int | None) -> str:
    """Re-read a changed authorization (change_auth) and record the diff; return a summary.

    Superseded when older than the newest lifecycle event (it concerned an install
    since replaced or cancelled, whose re-read already happened) or than the newest
    change_auth applied.
    """
    newest = lifecycle.later_than(authorization, timestamp, "event_timestamp", "change_timestamp")
    if newest is not None:
        raise EventSuperseded(
            "older",
            f"change_auth of {timestamp} not applied: the authorization was re-read for an "
            f"event of {newest} already",
        )
    if not authorization.is_active:
        raise EventIgnored(
            "inactive", f"change_auth ignored: authorization is {authorization.status}"
        )
    key = f"change_auth:{authorization.suite.suite_id}:{authorization.corp.corpid}:{timestamp}"
    try:
        synced = authorization_sync(authorization=authorization, change_key=key, actor="callback")
    except WeComCorpGone as exc:
        # The re-read was refused: the stored code is dead at WeCom (the sync suspended
        # the authorization; a cancel or reinstall of it is on its way).
        return f"re-read refused (errcode {exc.errcode}): authorization suspended"
    if timestamp is not None:
        Authorization.objects.filter(pk=authorization.pk).filter(
            Q(change_timestamp__isnull=True) | Q(change_timestamp__lt=timestamp)
        ).update(change_timestamp=timestamp)
    diff = (synced.last_change or {}).get("diff") or {}
    return "auth info re-read: " + (", ".join(sorted(diff)) + " changed" if diff else "no change")


def authorization_edition_event(*, authorization: Authorization, timestamp: int | None) -> str:
    """Re-read the edition after change_editon (v1 get_auth_info); return a summary."""
    newest = lifecycle.later_than(authorization, timestamp, "event_timestamp", "edition_timestamp")
    if newest is not None:
        raise EventSuperseded(
            "older",
            f"change_editon of {timestamp} not applied: the edition was read for an event "
            f"of {newest} already",
        )
    if not authorization.is_active:
        raise EventIgnored(
            "inactive", f"change_editon ignored: authorization is {authorization.status}"
        )
    before = dict(authorization.edition or {})
    # Recorded below as an edition change, not as a change_auth-like diff.
    synced = authorization_sync(
        authorization=authorization, with_edition=True, actor="callback", record_diff=False
    )
    if timestamp is not None:
        Authorization.objects.filter(pk=authorization.pk).filter(
            Q(edition_timestamp__isnull=True) | Q(edition_timestamp__lt=timestamp)
        ).update(edition_timestamp=timestamp)
    after = dict(synced.edition or {})
    key = f"change_editon:{synced.suite.suite_id}:{synced.corp.corpid}:{timestamp}"
    if not FeedEvent.objects.filter(source_key=key).exists():
        entry = AuthorizationHistory.objects.create(
            authorization=synced,
            action="edition_changed",
            from_status=synced.status,
            to_status=synced.status,
            actor="callback",
            detail={"before": before, "after": after, "timestamp": timestamp},
        )
        _publish(
            synced, entry, source_key=key, extra={"edition": after, "previous_edition": before}
        )
    name = after.get("edition_name") or after.get("edition_id") or "none"
    return f"edition re-read: {name}"


# Activity events (messages.ACTIVITY_EVENTS) → (field, value, field of its EffectTime).
ACTIVITY_MOVES = {
    "low_active_alert": ("activity", Authorization.Activity.LOW_ACTIVE_ALERT),
    "low_active": ("activity", Authorization.Activity.LOW_ACTIVE),
    "active_restored": ("activity", Authorization.Activity.NORMAL),
    "inactive_alert": ("agent_state", Authorization.AgentState.INACTIVE_ALERT),
    "close_inactive_agent": ("agent_state", Authorization.AgentState.CLOSED),
    "reopen_inactive_agent": ("agent_state", Authorization.AgentState.OPEN),
}


def authorization_activity_event(
    *,
    authorization: Authorization,
    event_type: str,
    timestamp: int | None,
    effect_time: int | None = None,
) -> str:
    """Record a low-activity or disuse event on the tenant; return a summary.

    Each of the two states follows its newest event by CreateTime (at the same second
    the later arrival wins, as for suite tickets); events older than the current
    install concern the one before it and are superseded.
    """
    field, value = ACTIVITY_MOVES[event_type]
    clock = f"{field}_timestamp"
    effect_field = f"{field}_effect_at"
    with transaction.atomic():
        locked = (
            Authorization.objects.select_for_update()
            .select_related("suite", "corp")
            .get(pk=authorization.pk)
        )
        newest = lifecycle.lifecycle_clock(locked)
        if timestamp is not None and newest is not None and timestamp < newest:
            raise EventSuperseded(
                "older",
                f"{event_type} of {timestamp} not applied: it predates the "
                f"{locked.event_type} of {newest}",
            )
        stored = getattr(locked, clock)
        if timestamp is not None and stored is not None and timestamp < stored:
            raise EventSuperseded(
                "older",
                f"{event_type} of {timestamp} not applied: a newer {field} event of {stored} "
                "is applied",
            )
        previous = getattr(locked, field)
        setattr(locked, field, value)
        if event_type.endswith("_alert"):
            setattr(
                locked,
                effect_field,
                datetime.fromtimestamp(effect_time, tz=UTC) if effect_time else None,
            )
        elif value in (Authorization.Activity.NORMAL, Authorization.AgentState.OPEN):
            setattr(locked, effect_field, None)
        if timestamp is not None:
            setattr(locked, clock, timestamp)
        locked.save()
        key = f"{event_type}:{locked.suite.suite_id}:{locked.corp.corpid}:{timestamp}"
        if previous != value and not FeedEvent.objects.filter(source_key=key).exists():
            entry = AuthorizationHistory.objects.create(
                authorization=locked,
                action=event_type,
                from_status=locked.status,
                to_status=locked.status,
                actor="callback",
                detail={
                    field: {"before": previous, "after": value},
                    "timestamp": timestamp,
                    **({"effect_time": effect_time} if effect_time else {}),
                },
            )
            _publish(
                locked,
                entry,
                source_key=key,
                extra={field: value, f"previous_{field}": previous, "effect_time": effect_time},
            )
    return f"{field} {previous} → {value}"


def authorization_for(*, suite_id: str, corpid: str) -> Authorization | None:
    return (
        Authorization.objects.select_related("suite", "corp")
        .filter(suite__suite_id=suite_id, corp__corpid=corpid)
        .first()
    )


def authorizations_reconcile(*, older_than: timedelta, limit: int = 200) -> int:
    """Re-read auth info of active authorizations not synced for ``older_than``."""
    cutoff = timezone.now() - older_than
    due = (
        Authorization.objects.filter(status=Authorization.Status.ACTIVE)
        .filter(Q(auth_info_synced_at__isnull=True) | Q(auth_info_synced_at__lt=cutoff))
        .order_by("auth_info_synced_at")[:limit]
    )
    count = 0
    for authorization in due:
        try:
            authorization_sync(authorization=authorization, actor="reconcile")
            count += 1
        except WeComError as exc:
            logger.warning("reconcile of %s failed: %s", authorization, type(exc).__name__)
    return count
