"""Installing a suite in a corp: install links, and the auth code exchanged exactly once."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction
from django.utils import timezone

from tenants import credentials
from tenants import install_links
from tenants import lifecycle
from tenants.lifecycle import EventSuperseded
from tenants.lifecycle import LifecycleEvent
from tenants.models import AuthCodeClaim
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import CredentialToken
from tenants.models import Suite
from tenants.services.superseded import supersede
from tenants.services.sync import authorization_sync
from tenants.services.sync import corp_upsert
from tenants.transitions import history_publish
from tenants.wecom import provider_api
from tenants.wecom import suite_api
from wecom.errors import WeComApiError
from wecom.errors import WeComBusy
from wecom.errors import WeComError
from wecom.errors import WeComTransportError
from wecom.ratelimit import background_calls
from wecom_provider.backoff import exponential
from wecom_provider.backoff import jittered
from wecom_provider.broker import BestEffortPublisher

logger = logging.getLogger(__name__)

# A claim left "claimed" this long belongs to a process that died mid-exchange.
STALE_CLAIM_AFTER = timedelta(minutes=2)
CLAIM_WAIT_SECONDS = 15.0


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


# tenants/tasks.py registers it; published by name (wecom_provider/broker.py), so this
# module need not import the task that imports it back.
INSTALL_FOLLOW_UP_TASK = "tenants.install_follow_up"
# No pause after a failed publish: each install tries the broker itself, as before.
_publisher = BestEffortPublisher(backoff=0.0, fallback="the install reconciliation")


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
    return jittered(exponential(attempt, base=5.0, cap=60.0), low=0.8, high=1.2)


def _follow_up_later(authorization: Authorization, *, countdown: float | None = None) -> None:
    # If the broker refuses, the reconciliation completes the install.
    _publisher.send(
        INSTALL_FOLLOW_UP_TASK,
        [authorization.pk],
        countdown=follow_up_delay(1) if countdown is None else countdown,
    )


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
    corp = corp_upsert(grant.get("auth_corp_info") or {})
    authorization = (
        Authorization.objects.select_for_update()
        .select_related("suite", "corp")
        .filter(suite=suite, corp=corp)
        .first()
    )
    if seen is not None and lifecycle.snapshot(authorization) != seen:
        return None
    if decision == lifecycle.SUPERSEDE and authorization is not None:
        superseded = supersede(
            authorization,
            event,
            newer="a newer event is already applied",
            tie="a tie, and WeCom no longer accepts the permanent code it granted",
        )
        return authorization, superseded
    now = timezone.now()
    created = authorization is None
    if authorization is None:
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
    _installer_and_state(authorization, grant, suite=suite, state=state)
    authorization.save()
    entry = AuthorizationHistory.objects.create(
        authorization=authorization,
        action=action,
        from_status=previous,
        to_status=authorization.status,
        actor=source,
        detail={"event": event.type, "timestamp": event.timestamp},
    )
    history_publish(authorization, entry)
    # New permanent code: the stored corp token (if any) belongs to the old one. Drop
    # the cached copy again after commit: a reader may have re-cached the old row between.
    credentials.token_invalidate(authorization)
    transaction.on_commit(lambda: credentials.token_invalidate(authorization))
    credential = credentials.credential_row(authorization)
    CredentialToken.objects.filter(pk=credential.pk).update(refresh_enabled=True)
    return authorization, None


def _installer_and_state(
    authorization: Authorization, grant: dict, *, suite: Suite, state: str
) -> None:
    """Set who installed, and the product's state if it is one we may pass on."""
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
