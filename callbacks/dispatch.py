"""One map from parsed events to the handler that owns them.

tenants and licensing own their lifecycle events; the contact / external-contact family
is recorded on the product event feed; anything else is kept and marked ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import OperationalError

from callbacks import binding
from callbacks import dependencies
from callbacks.models import CallbackEvent
from callbacks.rejections import rejection_record
from licensing.handlers import HANDLERS as LICENSING_HANDLERS
from tenants import selectors as tenant_selectors
from tenants import services as tenant_services
from tenants.credentials import CredentialUnavailable
from tenants.feed import FeedDraft
from tenants.feed import feed_publish
from tenants.feed import feed_publish_many
from tenants.handlers import DATA_HANDLERS
from tenants.handlers import HANDLERS as TENANT_HANDLERS
from tenants.lifecycle import EventNotApplied
from tenants.models import Corp
from tenants.models import Suite
from tenants.services import InstallInProgress
from wecom import messages
from wecom.errors import WeComBusy
from wecom.errors import WeComRateLimited
from wecom.errors import WeComTransportError
from wecom_provider.observability import metrics

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
# ...but these are pushed to webhook subscribers (never stored on the feed row): a
# WelcomeCode is valid for 20 s and is the whole point of an add_external_contact.
FEED_PUSH_ONLY = frozenset({"WelcomeCode"})
# Event types the platform has no handler for reach products as this one type, with
# their parsed fields minus anything secret (see _public_fields).
GENERIC_FEED_TYPE = "wecom.unknown"
# A field is secret when its name (case-insensitive) is one of these or contains one of
# SECRET_MARKERS: codes that open a corp or an install, tickets, tokens, keys.
SECRET_NAMES = frozenset(
    name.lower()
    for name in (*FEED_DROP_FIELDS, "PermanentCode", "PreAuthCode", "Code", "EncodingAESKey")
)
SECRET_MARKERS = ("secret", "token", "ticket", "authcode", "permanent", "password", "aeskey")


@dataclass(frozen=True)
class Outcome:
    status: str
    result: str


# How to process one inbox row now, by id (callbacks.services.callback_process): the
# caller hands it in, since processing a row is what calls this module.
Process = Callable[..., str | None]


def dispatch(event: messages.Event, row: CallbackEvent, *, process: Process) -> Outcome:
    """Run the handler for ``event``; return the row's final status and a short result.

    Nothing runs for a row that names objects outside its URL (callbacks/binding.py);
    a handler that decides to change nothing (an event older than what its tenant
    reflects) gives the row that status, with the reason. ``process`` applies the
    suite's waiting tickets before an auth code (callbacks/dependencies.py).
    """
    violation = binding.stored_violation(row, event)
    if violation is not None:
        _not_applied(row, "rejected", violation.reason)
        rejection_record(endpoint=row.endpoint, reason=violation.reason)
        return Outcome(CallbackEvent.Status.REJECTED, violation.describe())
    try:
        return _run(event, row, process)
    except EventNotApplied as exc:
        _not_applied(row, exc.status, exc.reason)
        return Outcome(exc.status, str(exc))


def _not_applied(row: CallbackEvent, outcome: str, reason: str) -> None:
    metrics.CALLBACK_NOT_APPLIED_TOTAL.labels(
        endpoint=row.endpoint, info_type=row.info_type, outcome=outcome, reason=reason
    ).inc()


def _run(event: messages.Event, row: CallbackEvent, process: Process) -> Outcome:
    if event.info_type in dependencies.NEEDS_SUITE_TOKEN and row.suite_id:
        # Tickets first: the exchange needs the suite token a waiting ticket gives.
        dependencies.tickets_apply_pending(suite_id=row.suite_id, process=process)
    handler = HANDLERS.get(event.info_type)
    if handler is not None:
        result = str(handler(event) or "done")
        if event.info_type == "suite_ticket" and row.suite_id:
            dependencies.auth_codes_wake(suite_id=row.suite_id)
        return Outcome(CallbackEvent.Status.DONE, result)
    data_handler = DATA_HANDLERS.get(event.info_type)
    if data_handler is not None and row.suite_id:
        return Outcome(CallbackEvent.Status.DONE, str(data_handler(event, suite_id=row.suite_id)))
    if isinstance(event, messages.ChangeAppAdmin):
        return _admins_changed(event, row)
    prefix = FEED_PREFIXES.get(event.info_type)
    if prefix is not None:
        return _to_feed(event, row, prefix)
    return _unhandled_to_feed(event, row)


def feed_prefix(event: messages.Event, row: CallbackEvent) -> str | None:
    """The feed prefix if ``dispatch`` would only publish ``event`` on the feed (no
    handler, nothing else to run), else None. Mirrors the order of ``_run``."""
    if (
        event.info_type in dependencies.NEEDS_SUITE_TOKEN
        or event.info_type in HANDLERS
        or (event.info_type in DATA_HANDLERS and row.suite_id)
        or isinstance(event, messages.ChangeAppAdmin)
    ):
        return None
    return FEED_PREFIXES.get(event.info_type)


def _feed_draft(event: messages.Event, row: CallbackEvent, prefix: str, suites, corps) -> FeedDraft:
    type_ = f"{prefix}.{event.change_type}" if event.change_type else prefix
    return FeedDraft(
        type=type_,
        source_key=f"callback:{row.dedupe_key}",
        suite=suites.get(row.suite_id) if row.suite_id else None,
        corp=corps.get(event.auth_corp_id) if event.auth_corp_id else None,
        data={k: v for k, v in event.raw.items() if k not in FEED_DROP_FIELDS},
        codes={k: event.raw[k] for k in FEED_PUSH_ONLY if event.raw.get(k)},
    )


def _feed_outcome(draft: FeedDraft, entry) -> Outcome:
    return Outcome(
        CallbackEvent.Status.DONE, f"feed {draft.type}" + ("" if entry else " (already)")
    )


def _to_feed(event: messages.Event, row: CallbackEvent, prefix: str) -> Outcome:
    suites = {s.suite_id: s for s in Suite.objects.filter(suite_id=row.suite_id)[:1]}
    corps = {c.corpid: c for c in Corp.objects.filter(corpid=event.auth_corp_id)[:1]}
    draft = _feed_draft(event, row, prefix, suites, corps)
    entry = feed_publish(
        type=draft.type,
        source_key=draft.source_key,
        suite=draft.suite,
        corp=draft.corp,
        data=draft.data,
        codes=draft.codes,
    )
    return _feed_outcome(draft, entry)


def feed_many(pairs: list[tuple[messages.Event, CallbackEvent]]) -> dict[int, Outcome]:
    """Publish, together, the feed entries of rows that ``dispatch`` would only put on
    the feed; return the outcome of each row taken, by id. The others (a binding
    violation, a handler to run) are left to ``dispatch``, row by row.

    The same entries and outcomes as ``dispatch`` one row at a time, for a batch: the
    suites and corps are read once, and the entries written by one statement
    (tenants.feed.feed_publish_many).
    """
    taken = []
    for event, row in pairs:
        prefix = feed_prefix(event, row)
        if prefix is not None and binding.stored_violation(row, event) is None:
            taken.append((event, row, prefix))
    if not taken:
        return {}
    suite_ids = {row.suite_id for _, row, _ in taken if row.suite_id}
    corpids = {event.auth_corp_id for event, _, _ in taken if event.auth_corp_id}
    suites = {s.suite_id: s for s in Suite.objects.filter(suite_id__in=suite_ids)}
    corps = {c.corpid: c for c in Corp.objects.filter(corpid__in=corpids)}
    drafts = [_feed_draft(event, row, prefix, suites, corps) for event, row, prefix in taken]
    entries = feed_publish_many(drafts)
    return {
        row.pk: _feed_outcome(draft, entry)
        for (_, row, _), draft, entry in zip(taken, drafts, entries, strict=True)
    }


def _unhandled_to_feed(event: messages.Event, row: CallbackEvent) -> Outcome:
    """Pass an event with no handler on as GENERIC_FEED_TYPE; the row stays ``ignored``
    (the platform did nothing with it). Without a known suite or corp no product could
    see it, so nothing is published."""
    ignored = f"no handler for {event.info_type}"
    suite = Suite.objects.filter(suite_id=row.suite_id).first() if row.suite_id else None
    corp = Corp.objects.filter(corpid=event.auth_corp_id).first() if event.auth_corp_id else None
    if suite is None and corp is None:
        return Outcome(CallbackEvent.Status.IGNORED, ignored)
    feed_publish(
        type=GENERIC_FEED_TYPE,
        source_key=f"callback:{row.dedupe_key}",
        suite=suite,
        corp=corp,
        data={
            "info_type": event.info_type,
            "change_type": event.change_type,
            "fields": _public_fields(event.raw),
        },
    )
    return Outcome(CallbackEvent.Status.IGNORED, f"{ignored}; on the feed as {GENERIC_FEED_TYPE}")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(marker in lowered for marker in SECRET_MARKERS)


def _public_fields(value):
    """Return ``value`` (parsed XML: dicts, lists, text) without secret fields, at any depth."""
    if isinstance(value, dict):
        return {k: _public_fields(v) for k, v in value.items() if not _is_secret(str(k))}
    if isinstance(value, list):
        return [_public_fields(v) for v in value]
    return value


def _admins_changed(event: messages.ChangeAppAdmin, row: CallbackEvent) -> Outcome:
    # A data-URL event carries no SuiteId: the suite is the one whose URL received it.
    suite_id = event.suite_id or row.suite_id
    authorization = tenant_selectors.authorization_for(
        suite_id=suite_id or "", corpid=event.auth_corp_id or ""
    )
    if authorization is None or not authorization.is_active:
        return Outcome(CallbackEvent.Status.IGNORED, "no active authorization")
    key = f"change_app_admin:{suite_id}:{event.auth_corp_id}:{event.timestamp}"
    tenant_services.authorization_sync(
        authorization=authorization, change_key=key, actor="callback"
    )
    return Outcome(CallbackEvent.Status.DONE, "admin list refreshed")
