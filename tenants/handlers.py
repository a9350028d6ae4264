"""Reactions to WeCom lifecycle callbacks: plain, idempotent functions of a parsed event.

The callbacks app stores and dispatches; these decide. Running one twice has the
effect of running it once (the auth-code claim, the ticket CAS and status
transitions make sure of that).
"""

from __future__ import annotations

import logging

from tenants import services
from tenants.models import Suite
from wecom_provider.wecom import messages

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
        suite=_suite(event), auth_code=event.auth_code, source="callback", state=event.state or ""
    )
    return f"authorized {authorization.corp.corpid}"


def handle_reset_permanent_code(event: messages.ResetPermanentCode) -> str:
    authorization = services.authorization_install(
        suite=_suite(event), auth_code=event.auth_code, source="reset"
    )
    return f"permanent code reset for {authorization.corp.corpid}"


def _authorization(event: messages.Event):
    authorization = services.authorization_for(
        suite_id=event.suite_id or "", corpid=event.auth_corp_id or ""
    )
    if authorization is None:
        raise UnknownTenant(f"no authorization of {event.auth_corp_id!r} for {event.suite_id!r}")
    return authorization


def handle_change_auth(event: messages.ChangeAuth) -> str:
    authorization = _authorization(event)
    if not authorization.is_active:
        return f"ignored: authorization is {authorization.status}"
    key = f"change_auth:{event.suite_id}:{event.auth_corp_id}:{event.timestamp}"
    services.authorization_sync(authorization=authorization, change_key=key)
    return "auth info refreshed"


def handle_cancel_auth(event: messages.CancelAuth) -> str:
    changed = services.authorization_cancel(authorization=_authorization(event), actor="callback")
    return "cancelled" if changed else "already cancelled"


HANDLERS = {
    "suite_ticket": handle_suite_ticket,
    "create_auth": handle_create_auth,
    "change_auth": handle_change_auth,
    "cancel_auth": handle_cancel_auth,
    "reset_permanent_code": handle_reset_permanent_code,
}
