"""An authorization's status, and the history and feed entries each change of it leaves.

The one write path for suspend, resume and cancel, by ops or by the platform. It sits
below the token layer (tenants/credentials.py suspends a tenant whose corp WeCom reports
gone), so it calls no WeCom API; tenants.services re-exports its writes.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from tenants.credential_rows import token_invalidate
from tenants.feed import feed_publish
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import CredentialToken

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


def history_publish(
    authorization: Authorization,
    entry: AuthorizationHistory,
    *,
    source_key: str = "",
    extra: dict | None = None,
) -> None:
    """Put a history entry of ``authorization`` on the product feed (once per key)."""
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
        history_publish(locked, entry)
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
    token_invalidate(authorization)
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
    token_invalidate(authorization)
    CredentialToken.objects.filter(authorization=authorization).update(refresh_enabled=False)
    return changed
