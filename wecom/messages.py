"""Parsing of WeCom callback XML: the outer envelope and the decrypted events.

Protocol doc §7.2 (envelope) and §8 (catalogue). The safe XML and the envelope are
wecom/safexml.py's; the events, one module per family, are wecom/events/'s. This
module is their one public name for callers: ``from wecom import messages`` and
``messages.parse_event(...)``, ``messages.CreateAuth``. No Django imports: the
simulator and the platform share it.
"""

from __future__ import annotations

from wecom.events import ACTIVITY_EVENTS
from wecom.events import ActivatedAccount
from wecom.events import AppActivity
from wecom.events import AutoActivate
from wecom.events import CancelAuth
from wecom.events import ChangeAppAdmin
from wecom.events import ChangeAuth
from wecom.events import ChangeEdition
from wecom.events import ContactEvent
from wecom.events import CreateAuth
from wecom.events import CreateParty
from wecom.events import CreateUser
from wecom.events import DataEvent
from wecom.events import DeleteParty
from wecom.events import DeleteUser
from wecom.events import Event
from wecom.events import ExtAttr
from wecom.events import ExternalChatChange
from wecom.events import ExternalContactChange
from wecom.events import ExternalTagChange
from wecom.events import LicensePaySuccess
from wecom.events import LicenseRefund
from wecom.events import ResetPermanentCode
from wecom.events import ShareAgentChange
from wecom.events import SuiteTicket
from wecom.events import UnknownEvent
from wecom.events import UnlicensedNotify
from wecom.events import UpdateParty
from wecom.events import UpdateTag
from wecom.events import UpdateUser
from wecom.events import parse_event
from wecom.events import parse_event_header
from wecom.safexml import ENVELOPE_MAX_BYTES
from wecom.safexml import EVENT_MAX_BYTES
from wecom.safexml import MAX_DEPTH
from wecom.safexml import Envelope
from wecom.safexml import MalformedEnvelope
from wecom.safexml import MalformedMessage
from wecom.safexml import MessageError
from wecom.safexml import MessageTooLarge
from wecom.safexml import RawValue
from wecom.safexml import parse_envelope
from wecom.safexml import parse_xml

__all__ = [
    "ACTIVITY_EVENTS",
    "ENVELOPE_MAX_BYTES",
    "EVENT_MAX_BYTES",
    "MAX_DEPTH",
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
    "Envelope",
    "Event",
    "ExtAttr",
    "ExternalChatChange",
    "ExternalContactChange",
    "ExternalTagChange",
    "LicensePaySuccess",
    "LicenseRefund",
    "MalformedEnvelope",
    "MalformedMessage",
    "MessageError",
    "MessageTooLarge",
    "RawValue",
    "ResetPermanentCode",
    "ShareAgentChange",
    "SuiteTicket",
    "UnknownEvent",
    "UnlicensedNotify",
    "UpdateParty",
    "UpdateTag",
    "UpdateUser",
    "parse_envelope",
    "parse_event",
    "parse_event_header",
    "parse_xml",
]
