"""Re-reading an authorization from WeCom: auth info, permissions, admins, edition."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants import credentials
from tenants import lifecycle
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import Corp
from tenants.models import FeedEvent
from tenants.transitions import authorization_suspend
from tenants.transitions import history_publish
from tenants.wecom import corp_api
from tenants.wecom import suite_api
from wecom.errors import WeComCorpGone
from wecom.errors import WeComError

logger = logging.getLogger(__name__)


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


def corp_upsert(info: dict) -> Corp:
    corpid = info["corpid"]
    corp, _ = Corp.objects.get_or_create(corpid=corpid)
    for key, value in _corp_defaults(info).items():
        setattr(corp, key, value)
    corp.raw = {**corp.raw, **info}
    corp.save()
    return corp


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
    admins, permissions = _admins_and_permissions(authorization, agent)
    with transaction.atomic():
        if info.get("auth_corp_info"):
            corp_upsert({"corpid": authorization.corp.corpid, **info["auth_corp_info"]})
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
        _record_change(locked, diff, record=record, key=change_key or "", actor=actor)
    return locked


def _admins_and_permissions(
    authorization: Authorization, agent: dict
) -> tuple[list | None, list | None]:
    """Return the app's admin list and grants (None for each WeCom would not give)."""
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
    return admins, permissions


def _record_change(
    locked: Authorization, diff: dict, *, record: bool, key: str, actor: str
) -> None:
    """Save the re-read row; with ``record``, note the diff on it, its history and the feed."""
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
        history_publish(locked, entry, source_key=key, extra={"diff": diff})


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
