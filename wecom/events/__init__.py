"""Decrypted WeCom callbacks as typed events (protocol §8), one module per family.

Each family module holds its events, and each event its own ``build`` beside its
fields: a new event is one class in one place. ``parse_event`` looks the payload's
(info_type, change_type) up in the registry those classes fill
(wecom/events/base.py); types not modelled come back as ``UnknownEvent``.

- ``lifecycle``: suite_ticket, create/change/cancel_auth, reset_permanent_code,
  change_editon, share_agent_change / share_chain_change;
- ``contact``: change_contact (members, departments, tags);
- ``external``: change_external_contact, change_external_chat, change_external_tag;
- ``license``: license_pay_success, license_refund, auto_activate;
- ``data``: data-URL events (unlicensed_notify, change_app_admin, activity).
"""

from __future__ import annotations

from wecom.events.base import BUILDERS
from wecom.events.base import Event
from wecom.events.base import UnknownEvent
from wecom.events.base import dispatch_name
from wecom.events.base import header_fields
from wecom.events.contact import ContactEvent
from wecom.events.contact import CreateParty
from wecom.events.contact import CreateUser
from wecom.events.contact import DeleteParty
from wecom.events.contact import DeleteUser
from wecom.events.contact import ExtAttr
from wecom.events.contact import UpdateParty
from wecom.events.contact import UpdateTag
from wecom.events.contact import UpdateUser
from wecom.events.data import ACTIVITY_EVENTS
from wecom.events.data import AppActivity
from wecom.events.data import ChangeAppAdmin
from wecom.events.data import DataEvent
from wecom.events.data import UnlicensedNotify
from wecom.events.external import ExternalChatChange
from wecom.events.external import ExternalContactChange
from wecom.events.external import ExternalTagChange
from wecom.events.license import ActivatedAccount
from wecom.events.license import AutoActivate
from wecom.events.license import LicensePaySuccess
from wecom.events.license import LicenseRefund
from wecom.events.lifecycle import CancelAuth
from wecom.events.lifecycle import ChangeAuth
from wecom.events.lifecycle import ChangeEdition
from wecom.events.lifecycle import CreateAuth
from wecom.events.lifecycle import ResetPermanentCode
from wecom.events.lifecycle import ShareAgentChange
from wecom.events.lifecycle import SuiteTicket
from wecom.safexml import EVENT_MAX_BYTES
from wecom.safexml import parse_xml

__all__ = [
    "ACTIVITY_EVENTS",
    "ActivatedAccount",
    "AppActivity",
    "AutoActivate",
    "CancelAuth",
    "ChangeAppAdmin",
    "ChangeAuth",
    "ChangeEdition",
    "ContactEvent",
    "CreateAuth",
    "CreateParty",
    "CreateUser",
    "DataEvent",
    "DeleteParty",
    "DeleteUser",
    "Event",
    "ExtAttr",
    "ExternalChatChange",
    "ExternalContactChange",
    "ExternalTagChange",
    "LicensePaySuccess",
    "LicenseRefund",
    "ResetPermanentCode",
    "ShareAgentChange",
    "SuiteTicket",
    "UnknownEvent",
    "UnlicensedNotify",
    "UpdateParty",
    "UpdateTag",
    "UpdateUser",
    "parse_event",
    "parse_event_header",
]


def parse_event_header(xml: str | bytes, *, max_bytes: int = EVENT_MAX_BYTES) -> Event:
    """Return only the Event base fields of a decrypted payload, as a plain Event.

    For the callback request path, which stores the payload and needs only its type,
    suite, corp and time: half the cost of parse_event. The same XML rules apply
    (MessageError for anything malformed or hostile); type-specific fields are not
    read, so a payload whose own fields are wrong passes here and fails parse_event.
    """
    raw = parse_xml(xml, max_bytes=max_bytes)
    return Event(**header_fields(raw, dispatch_name(raw)))


def parse_event(xml: str | bytes, *, max_bytes: int = EVENT_MAX_BYTES) -> Event:
    """Return the typed Event for a decrypted callback payload.

    Types not modelled here come back as UnknownEvent with every field in
    ``raw``. Raises MessageError (only) for anything malformed or hostile.
    """
    raw = parse_xml(xml, max_bytes=max_bytes)
    info_type = dispatch_name(raw)
    common = header_fields(raw, info_type)
    builder = BUILDERS.get((info_type, common["change_type"])) or BUILDERS.get((info_type, None))
    if builder is None:
        return UnknownEvent(**common)
    return builder(raw, common)
