"""One map from parsed events to the handler that owns them.

tenants and licensing own their lifecycle events; the contact / external-contact family
is recorded on the product event feed; anything else is kept and marked ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import OperationalError

from callbacks.models import CallbackEvent
from licensing.handlers import HANDLERS as LICENSING_HANDLERS
from tenants import services as tenant_services
from tenants.credentials import CredentialUnavailable
from tenants.feed import feed_publish
from tenants.handlers import HANDLERS as TENANT_HANDLERS
from tenants.models import Corp
from tenants.models import Suite
from tenants.services import InstallInProgress
from wecom_provider.wecom import messages
from wecom_provider.wecom.errors import WeComBusy
from wecom_provider.wecom.errors import WeComRateLimited
from wecom_provider.wecom.errors import WeComTransportError

# Worth another attempt later; everything else fails the row for ops to look at.
TRANSIENT_ERRORS = (
    WeComTransportError,
    WeComBusy,
    WeComRateLimited,
    InstallInProgress,
    CredentialUnavailable,
    OperationalError,
)

HANDLERS = {**TENANT_HANDLERS, **LICENSING_HANDLERS}

# Products see these on /api/v1/events/ as "<prefix>.<change_type>".
FEED_PREFIXES = {
    "change_contact": "contact",
    "change_external_contact": "external_contact",
    "change_external_chat": "external_chat",
    "change_external_tag": "external_tag",
    "share_agent_change": "tenant.share",
    "share_chain_change": "tenant.share",
}
# Single-use or short-lived codes never go on the feed.
FEED_DROP_FIELDS = frozenset({"WelcomeCode", "AuthCode", "SuiteTicket", "ResponseCode"})


@dataclass(frozen=True)
class Outcome:
    status: str
    result: str


def dispatch(event: messages.Event, row: CallbackEvent) -> Outcome:
    """Run the handler for ``event``; return the row's final status and a short result."""
    handler = HANDLERS.get(event.info_type)
    if handler is not None:
        return Outcome(CallbackEvent.Status.DONE, str(handler(event) or "done"))
    if isinstance(event, messages.ChangeAppAdmin):
        return _admins_changed(event, row)
    prefix = FEED_PREFIXES.get(event.info_type)
    if prefix is not None:
        return _to_feed(event, row, prefix)
    return Outcome(CallbackEvent.Status.IGNORED, f"no handler for {event.info_type}")


def _to_feed(event: messages.Event, row: CallbackEvent, prefix: str) -> Outcome:
    suite = Suite.objects.filter(suite_id=row.suite_id).first() if row.suite_id else None
    corp = Corp.objects.filter(corpid=event.auth_corp_id).first() if event.auth_corp_id else None
    type_ = f"{prefix}.{event.change_type}" if event.change_type else prefix
    data = {k: v for k, v in event.raw.items() if k not in FEED_DROP_FIELDS}
    entry = feed_publish(
        type=type_, source_key=f"callback:{row.dedupe_key}", suite=suite, corp=corp, data=data
    )
    return Outcome(CallbackEvent.Status.DONE, f"feed {type_}" + ("" if entry else " (already)"))


def _admins_changed(event: messages.ChangeAppAdmin, row: CallbackEvent) -> Outcome:
    # A data-URL event carries no SuiteId: the suite is the one whose URL received it.
    suite_id = event.suite_id or row.suite_id
    authorization = tenant_services.authorization_for(
        suite_id=suite_id or "", corpid=event.auth_corp_id or ""
    )
    if authorization is None or not authorization.is_active:
        return Outcome(CallbackEvent.Status.IGNORED, "no active authorization")
    key = f"change_app_admin:{suite_id}:{event.auth_corp_id}:{event.timestamp}"
    tenant_services.authorization_sync(authorization=authorization, change_key=key)
    return Outcome(CallbackEvent.Status.DONE, "admin list refreshed")
