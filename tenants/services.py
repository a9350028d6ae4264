"""Writes for the tenants app: registration, tickets, install, sync and lifecycle.

Views, tasks, admin actions, commands and callback handlers only call these. WeCom
calls happen outside transactions (no row lock is held while waiting on the network).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import IntegrityError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants import credentials
from tenants import install_links
from tenants.feed import feed_publish
from tenants.models import AuthCodeClaim
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import Corp
from tenants.models import CredentialToken
from tenants.models import FeedEvent
from tenants.models import Provider
from tenants.models import Suite
from tenants.wecom import corp_api
from tenants.wecom import suite_api
from wecom_provider.wecom.errors import WeComApiError
from wecom_provider.wecom.errors import WeComCorpGone
from wecom_provider.wecom.errors import WeComError

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


def install_link_create(*, suite: Suite, state: str = "", test: bool = False) -> InstallLink:
    """Return WeCom's install page URL for ``suite`` with a fresh pre-auth code.

    ``state`` is the product's own (≤ ``install_links.PRODUCT_STATE_MAX`` letters or
    digits); WeCom gets it signed, with an expiry. ``test`` (测试授权) is for the
    admin's signed test-install links only.
    """
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


class InstallInProgress(Exception):
    """Another process is exchanging this auth code right now; try again shortly."""


class InstallFailed(Exception):
    """The auth code could not be exchanged (message has no secret)."""


def _code_digest(suite: Suite, auth_code: str) -> str:
    return hashlib.sha256(f"{suite.suite_id}|{auth_code}".encode()).hexdigest()


def authorization_install(
    *, suite: Suite, auth_code: str, source: str, state: str = "", wait: bool = True
) -> Authorization:
    """Exchange ``auth_code`` for a permanent code exactly once; return the authorization.

    The install redirect, the create_auth callback and redelivered tasks may all
    carry the same code. The unique claim row decides who calls WeCom; everyone
    else waits for (or reads) the winner's result.
    """
    digest = _code_digest(suite, auth_code)
    claim = _claim(suite, digest, source)
    if claim is None:
        return _await_claim(digest, wait=wait)
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
    with transaction.atomic():
        authorization = _authorization_upsert(suite=suite, grant=grant, source=source, state=state)
        AuthCodeClaim.objects.filter(pk=claim.pk).update(
            status=AuthCodeClaim.Status.EXCHANGED, authorization=authorization
        )
    # Network work after the commit: a failure here leaves a live tenant that the
    # reconciliation task completes later, never a lost permanent code.
    try:
        authorization_sync(authorization=authorization)
        credentials.token_get(authorization)
    except (WeComError, credentials.CredentialUnavailable) as exc:
        logger.warning("post-install sync of %s failed: %s", authorization, type(exc).__name__)
    return authorization


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


def _authorization_upsert(*, suite: Suite, grant: dict, source: str, state: str) -> Authorization:
    corp = _corp_upsert(grant.get("auth_corp_info") or {})
    authorization = Authorization.objects.select_for_update().filter(suite=suite, corp=corp).first()
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
    authorization.status = Authorization.Status.ACTIVE
    authorization.status_reason = ""
    authorization.suspended_at = None
    authorization.permanent_code = grant["permanent_code"]
    user = grant.get("auth_user_info") or {}
    if user:
        authorization.installer_userid = user.get("userid", "") or ""
        authorization.installer_open_userid = user.get("open_userid", "") or ""
        authorization.installer_name = user.get("name", "") or ""
    received = grant.get("state") or state
    if received:
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
    )
    _publish(authorization, entry)
    # New permanent code: the stored corp token (if any) belongs to the old one. Drop
    # the cached copy again after commit: a reader may have re-cached the old row between.
    credentials.token_invalidate(authorization)
    transaction.on_commit(lambda: credentials.token_invalidate(authorization))
    credential = credentials.credential_row(authorization)
    CredentialToken.objects.filter(pk=credential.pk).update(refresh_enabled=True)
    return authorization


# --- sync, suspend, cancel ---------------------------------------------------------------


FEED_TYPES = {
    "authorized": "tenant.authorized",
    "reauthorized": "tenant.authorized",
    "permanent_code_reset": "tenant.changed",
    "changed": "tenant.changed",
    "suspended": "tenant.suspended",
    "resumed": "tenant.resumed",
    "cancelled": "tenant.cancelled",
}


def _publish(
    authorization: Authorization, entry: AuthorizationHistory, *, source_key: str = ""
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
        },
    )


def authorization_sync(
    *, authorization: Authorization, change_key: str | None = None
) -> Authorization:
    """Re-read auth info (and the admin list) from WeCom; return the updated row.

    ``change_key``: WeCom told us something changed (change_auth, identified by this
    key); record it once in the history and on the product feed.
    """
    authorization = Authorization.objects.select_related("suite", "corp").get(pk=authorization.pk)
    try:
        info = suite_api(authorization.suite).get_auth_info(
            auth_corpid=authorization.corp.corpid, permanent_code=authorization.permanent_code
        )
    except WeComCorpGone as exc:
        authorization_suspend(
            authorization=authorization, reason=f"WeCom errcode {exc.errcode}", actor="system"
        )
        raise
    agents = (info.get("auth_info") or {}).get("agent") or []
    agent = agents[0] if agents else {}
    admins = None
    if authorization.is_active and agent:
        try:
            admins = corp_api(authorization).get_admin_list().get("admin", [])
        except (WeComError, credentials.CredentialUnavailable) as exc:
            logger.info("admin list of %s unavailable: %s", authorization, type(exc).__name__)
    with transaction.atomic():
        if info.get("auth_corp_info"):
            _corp_upsert({"corpid": authorization.corp.corpid, **info["auth_corp_info"]})
        locked = Authorization.objects.select_for_update().get(pk=authorization.pk)
        locked.auth_info = info.get("auth_info") or {}
        locked.agent_id = agent.get("agentid")
        locked.auth_mode = agent.get("auth_mode")
        locked.is_customized_app = bool(agent.get("is_customized_app", False))
        if info.get("edition_info"):
            locked.edition = info["edition_info"]
        if admins is not None:
            locked.admin_list = admins
        locked.auth_info_synced_at = timezone.now()
        locked.save()
        if change_key and not FeedEvent.objects.filter(source_key=change_key).exists():
            entry = AuthorizationHistory.objects.create(
                authorization=locked,
                action="changed",
                from_status=locked.status,
                to_status=locked.status,
                actor="callback",
            )
            _publish(locked, entry, source_key=change_key)
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
            authorization_sync(authorization=authorization)
            count += 1
        except WeComError as exc:
            logger.warning("reconcile of %s failed: %s", authorization, type(exc).__name__)
    return count
