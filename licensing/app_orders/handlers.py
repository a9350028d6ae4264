"""Reactions to the six 应用版本付费 callbacks (command URL, protocol doc §8.1, §13).

The five order events are hints: each makes us read the order it names from WeCom
(``services.app_order_event``), so a duplicate, a stale or a reordered event only leads
to one more read of the current truth. ``change_editon`` keeps the tenants app's event-
time rule (an event older than the last edition read changes nothing) and then records
what the re-read found as this tenant's edition (history, ``edition.changed``).
"""

from __future__ import annotations

from django.utils import timezone

from licensing.app_orders import editions
from licensing.app_orders import services
from tenants import handlers as tenant_handlers
from tenants import selectors as tenant_selectors
from tenants.lifecycle import EventIgnored
from tenants.models import Suite
from wecom import messages
from wecom.paid_apps import APP_ORDER_EVENTS
from wecom.paid_apps import AppOrderEvent


class MalformedAppOrderEvent(Exception):
    """The callback lacks the order id it is about."""


def handle_app_order(event: messages.Event) -> str:
    suite = Suite.objects.filter(suite_id=event.suite_id or "").first()
    if suite is None:
        raise EventIgnored(
            "unknown_suite", f"{event.info_type} for unknown suite {event.suite_id!r}"
        )
    try:
        order_event = AppOrderEvent.from_raw(event.info_type, event.raw)
    except ValueError as exc:
        raise MalformedAppOrderEvent(str(exc)) from None
    order = services.app_order_event(suite=suite, event=order_event)
    return f"app order {order.order_id} status {order.status}"


def handle_change_edition(event: messages.ChangeEdition) -> str:
    # When the read behind this event began at the latest: the fence of what it finds.
    read_at = timezone.now()
    result = tenant_handlers.handle_change_edition(event)  # EventNotApplied when older
    authorization = tenant_selectors.authorization_for(
        suite_id=event.suite_id or "", corpid=event.auth_corp_id or ""
    )
    if authorization is not None:
        editions.edition_observe(
            authorization=authorization,
            entry=dict(authorization.edition or {}),
            read_at=read_at,
            source="callback",
        )
    return result


HANDLERS = {
    **dict.fromkeys(sorted(APP_ORDER_EVENTS), handle_app_order),
    "change_editon": handle_change_edition,  # sic: WeCom's spelling (§8.1)
}
