"""URL binding: a callback may only touch what the URL that verified it is for.

The signature and receive id prove which keys sealed a callback, and so which URL it
belongs to. The payload's SuiteId, ServiceCorpId and AuthCorpId are only claims inside
it. So a callback verified on suite S's URLs may only touch suite S and its tenants,
and the provider's system-event URL only provider-level objects (license events of
that provider). A payload naming another suite or provider is stored as rejected, with
a counted reason, and never applied.

Checked twice: at ingest on the header fields (cheap, no query: the request path), and
before dispatch on the stored row, with the database lookups ingest must not pay for
(an order or corp of another provider). The second check also covers rows stored
before this rule and ops replays.
"""

from __future__ import annotations

from dataclasses import dataclass

from wecom import messages

# Events of a suite's command URL that name a suite and act on it or its tenants.
SUITE_EVENTS = frozenset(
    {
        "suite_ticket",
        "create_auth",
        "change_auth",
        "cancel_auth",
        "reset_permanent_code",
        "change_editon",
        "open_order",
        "change_order",
        "pay_for_app_success",
        "refund",
        "cancel_order",
    }
)
# Provider-level events (§8.3): the system-event URL only.
PROVIDER_EVENTS = frozenset(
    {
        "license_pay_success",
        "license_refund",
        "auto_activate",
        "register_corp",
        "enter_register_package",
        "agree_external_userid_migration",
    }
)

REASONS = {
    "foreign_suite": "the payload names another suite than the URL's",
    "foreign_provider": "the payload names another provider than the URL's",
    "foreign_corp": "the payload names another corp than the one that sealed it",
    "provider_event_on_suite_url": "a provider-level event on a suite URL",
    "suite_event_on_provider_url": "a suite event on the provider's system-event URL",
    "foreign_order": "the license order belongs to another provider",
    "corp_of_another_provider": "the corp authorized none of this provider's apps",
}


@dataclass(frozen=True)
class Violation:
    reason: str  # a key of REASONS: the metric and rejection-counter label
    detail: str  # ids only, never a secret

    def describe(self) -> str:
        return f"rejected ({self.reason}): {REASONS[self.reason]}; {self.detail}"[:300]


def header_violation(
    *, endpoint: str, route_id: str, receive_id: str, event: messages.Event
) -> Violation | None:
    """Return why a verified callback must not be applied, from its header alone.

    ``route_id`` is the suite id of a suite URL, or the provider corpid of the system
    URL; ``receive_id`` the id its ciphertext was sealed for.
    """
    info_type = event.info_type
    if endpoint == "system":
        if event.service_corp_id and event.service_corp_id != route_id:
            return Violation(
                "foreign_provider", f"ServiceCorpId {event.service_corp_id} on {route_id}'s URL"
            )
        if event.suite_id or info_type in SUITE_EVENTS:
            return Violation(
                "suite_event_on_provider_url", f"{info_type} (SuiteId {event.suite_id or '-'})"
            )
        return None
    if event.suite_id and event.suite_id != route_id:
        return Violation("foreign_suite", f"{info_type} for {event.suite_id} on {route_id}'s URL")
    if event.service_corp_id or info_type in PROVIDER_EVENTS:
        return Violation("provider_event_on_suite_url", f"{info_type} on {route_id}'s URL")
    if endpoint == "data" and event.auth_corp_id and event.auth_corp_id != receive_id:
        return Violation("foreign_corp", f"ToUserName {event.auth_corp_id} sealed for {receive_id}")
    return None


def stored_violation(row, event: messages.Event) -> Violation | None:
    """Return why a stored row must not be applied (header rules plus database ones)."""
    found = header_violation(
        endpoint=row.endpoint, route_id=row.route_id, receive_id=row.receive_id, event=event
    )
    if found is not None or row.endpoint != "system":
        return found
    return _provider_objects_violation(provider_corpid=row.route_id, event=event)


def _provider_objects_violation(*, provider_corpid: str, event: messages.Event) -> Violation | None:
    from licensing.models import LicenseOrder
    from tenants.models import Authorization

    order_id = getattr(event, "order_id", None)
    if order_id:
        order = (
            LicenseOrder.objects.filter(order_id=order_id)
            .select_related("provider")
            .only("provider__corpid")
            .first()
        )
        if order is not None and order.provider is not None:
            if order.provider.corpid != provider_corpid:
                return Violation("foreign_order", f"order {order_id} on {provider_corpid}'s URL")
            return None
    if event.auth_corp_id:
        apps = Authorization.objects.filter(corp__corpid=event.auth_corp_id)
        if apps.exists() and not apps.filter(suite__provider__corpid=provider_corpid).exists():
            return Violation(
                "corp_of_another_provider",
                f"{event.info_type} for {event.auth_corp_id} on {provider_corpid}'s URL",
            )
    return None
