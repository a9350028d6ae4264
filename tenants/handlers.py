"""Reactions to WeCom lifecycle callbacks: plain, idempotent functions of a parsed event.

The callbacks app stores and dispatches; these decide. Running one twice has the
effect of running it once (the auth-code claim, the ticket CAS and status
transitions make sure of that). Lifecycle events are applied in event time
(tenants/lifecycle.py): one that changes nothing raises EventNotApplied, which the
inbox records as superseded or ignored, with the reason.
"""

from __future__ import annotations

import logging

from tenants import selectors
from tenants import services
from tenants.lifecycle import EventIgnored
from tenants.lifecycle import LifecycleEvent
from tenants.models import Suite
from wecom import messages

logger = logging.getLogger(__name__)


class UnknownTenant(Exception):
    """The event names a suite or authorization the platform does not know."""


def _suite(event: messages.Event) -> Suite:
    suite = Suite.objects.filter(suite_id=event.suite_id).first()
    if suite is None:
        raise UnknownTenant(f"unknown suite {event.suite_id!r}")
    return suite


def handle_suite_ticket(event: messages.SuiteTicket) -> str:
    stored = services.suite_ticket_store(
        suite_id=_suite(event).suite_id, ticket=event.suite_ticket, timestamp=event.timestamp or 0
    )
    return "stored" if stored else "older than the stored ticket"


def handle_create_auth(event: messages.CreateAuth) -> str:
    authorization = services.authorization_install(
        suite=_suite(event),
        auth_code=event.auth_code,
        source="callback",
        state=event.state or "",
        event=LifecycleEvent.of_callback(event.info_type, event.timestamp),
        follow_up="later",  # the worker goes on to the next auth code at once
    )
    return f"authorized {authorization.corp.corpid}"


def handle_reset_permanent_code(event: messages.ResetPermanentCode) -> str:
    authorization = services.authorization_install(
        suite=_suite(event),
        auth_code=event.auth_code,
        source="reset",
        event=LifecycleEvent.of_callback(event.info_type, event.timestamp),
        follow_up="later",
    )
    return f"permanent code reset for {authorization.corp.corpid}"


def _authorization(event: messages.Event, *, suite_id: str | None = None):
    suite_id = event.suite_id or suite_id or ""
    authorization = selectors.authorization_for(suite_id=suite_id, corpid=event.auth_corp_id or "")
    if authorization is None:
        raise UnknownTenant(f"no authorization of {event.auth_corp_id!r} for {suite_id!r}")
    return authorization


def handle_change_auth(event: messages.ChangeAuth) -> str:
    try:
        authorization = _authorization(event)
    except UnknownTenant as exc:
        # Its create_auth is not processed yet (or failed): the install reads auth info
        # fresh anyway, so there is nothing for this re-read to add.
        raise EventIgnored("unknown_tenant", f"change_auth ignored: {exc}") from None
    return services.authorization_change_event(
        authorization=authorization, timestamp=event.timestamp
    )


def handle_cancel_auth(event: messages.CancelAuth) -> str:
    if not event.auth_corp_id:
        raise UnknownTenant("cancel_auth without AuthCorpId")
    return services.authorization_cancel_event(
        suite=_suite(event),
        corpid=event.auth_corp_id,
        event=LifecycleEvent.of_callback(event.info_type, event.timestamp),
    )


def handle_change_edition(event: messages.ChangeEdition) -> str:
    try:
        authorization = _authorization(event)
    except UnknownTenant as exc:
        raise EventIgnored("unknown_tenant", f"change_editon ignored: {exc}") from None
    return services.authorization_edition_event(
        authorization=authorization, timestamp=event.timestamp
    )


def handle_app_activity(event: messages.AppActivity, *, suite_id: str) -> str:
    """A data-URL activity event: the suite is the one whose URL received it."""
    try:
        authorization = _authorization(event, suite_id=suite_id)
    except UnknownTenant as exc:
        raise EventIgnored("unknown_tenant", f"{event.info_type} ignored: {exc}") from None
    return services.authorization_activity_event(
        authorization=authorization,
        event_type=event.info_type,
        timestamp=event.timestamp,
        effect_time=event.effect_time,
    )


HANDLERS = {
    "suite_ticket": handle_suite_ticket,
    "create_auth": handle_create_auth,
    "change_auth": handle_change_auth,
    "cancel_auth": handle_cancel_auth,
    "reset_permanent_code": handle_reset_permanent_code,
    "change_editon": handle_change_edition,  # sic: WeCom's spelling (§8.1)
}
# Data-URL events that need the suite of the URL (their payload names none).
DATA_HANDLERS = dict.fromkeys(messages.ACTIVITY_EVENTS, handle_app_activity)
