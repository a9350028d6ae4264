"""Lifecycle callbacks in event time (tenants/lifecycle.py): cancel, change, edition, activity."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from django.db import IntegrityError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tenants import credentials
from tenants import lifecycle
from tenants.lifecycle import EventIgnored
from tenants.lifecycle import EventSuperseded
from tenants.lifecycle import LifecycleEvent
from tenants.models import Authorization
from tenants.models import AuthorizationHistory
from tenants.models import Corp
from tenants.models import CredentialToken
from tenants.models import FeedEvent
from tenants.models import Suite
from tenants.services.install import DECISION_ATTEMPTS
from tenants.services.superseded import supersede
from tenants.services.sync import authorization_sync
from tenants.transitions import history_publish
from wecom.errors import WeComCorpGone


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
        return supersede(
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
    history_publish(authorization, entry)
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
        history_publish(
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
            history_publish(
                locked,
                entry,
                source_key=key,
                extra={field: value, f"previous_{field}": previous, "effect_time": effect_time},
            )
    return f"{field} {previous} → {value}"
