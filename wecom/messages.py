"""Parsing of WeCom callback XML: the outer envelope and the decrypted events.

Protocol doc §7.2 (envelope) and §8 (catalogue). The outer body is parsed before
the request is authenticated, so all XML goes through expat with defusedxml's
protections (DTDs, entities and external references forbidden; _expat_parser),
behind a size cap and a depth limit. Every failure is a ``MessageError``; callers
never see a parser's own exception types.

Events are frozen, slotted dataclasses. Each keeps ``raw``, the whole payload as
a dict, so fields we do not model are never lost. No Django imports: the
simulator and the platform share this module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import TypeVar
from xml.parsers import expat

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
    "parse_xml",
]

# The envelope only wraps one base64 ciphertext; real ones are a few KiB. The cap
# bounds parser work done before the signature is checked.
ENVELOPE_MAX_BYTES = 64 * 1024
EVENT_MAX_BYTES = 64 * 1024
# WeCom payloads nest three levels at most (ExtAttr/Item/Text/Value). The limit
# keeps the recursive dict conversion far from Python's recursion limit.
MAX_DEPTH = 16

_INT_RE = re.compile(r"-?[0-9]{1,19}")

# A parsed value: text, a dict of children, or a list when a tag repeats.
RawValue = str | dict[str, Any] | list[Any]


class MessageError(Exception):
    """Base for every malformed or hostile callback XML.

    Messages are fixed strings naming the problem, never the payload.
    """


class MalformedEnvelope(MessageError):
    """The outer POST body is not a usable ``<xml>…<Encrypt>…</xml>`` envelope."""


class MalformedMessage(MessageError):
    """The decrypted payload is not a usable callback event."""


class MessageTooLarge(MalformedEnvelope, MalformedMessage):
    """The XML is larger than the configured cap."""


# --- safe XML ---------------------------------------------------------------------------


def _to_utf8(
    data: str | bytes | bytearray | memoryview, *, max_bytes: int, error: type[MessageError]
) -> str:
    """Return data as str, enforcing the byte cap and strict UTF-8."""
    if isinstance(data, str):
        # Check the cheap bound first so a huge str is never encoded.
        if len(data) > max_bytes:
            raise MessageTooLarge("xml is too large")
        try:
            size = len(data.encode("utf-8"))
        except UnicodeEncodeError:  # lone surrogates
            size = -1
        if size < 0:
            raise error("xml is not valid unicode")
        if size > max_bytes:
            raise MessageTooLarge("xml is too large")
        return data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise error("xml must be str or bytes")
    if len(data) > max_bytes:
        raise MessageTooLarge("xml is too large")
    # Decoding ourselves and handing str to expat pins the encoding to UTF-8: a
    # declared encoding="gbk" (or anything else) is then ignored, not honoured.
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        pass
    raise error("xml is not UTF-8")


class _Refused(Exception):
    """Raised from inside expat: the document is refused (see _expat_parser)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def _refuse_dtd(*_args: object) -> None:
    raise _Refused("xml uses a forbidden DTD, entity or external reference")


def _expat_parser() -> Any:
    """A bare expat parser with defusedxml's protections, all of them on.

    defusedxml (forbid_dtd, forbid_entities, forbid_external) works by installing
    exactly these handlers on expat; we install them on a parser of our own to skip
    ElementTree's pure-Python tree building, which cost most of a callback's parse
    (issue 17). Any DOCTYPE is refused as it starts, so no entity can ever be declared:
    only XML's five predefined entities and character references exist, and any other
    reference is expat's own "undefined entity" error. Entity and external-reference
    declarations are refused too, should a DTD ever get past the first handler.
    tests/wecom/test_messages.py holds the hostile corpus and compares every result
    with defusedxml's own parse.
    """
    parser = expat.ParserCreate(None, "}")  # as ElementTree: namespaces on, "}" separator
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    parser.buffer_text = True
    parser.ordered_attributes = True  # attributes are ignored: the cheaper form
    return parser


def _tag(name: str) -> str:
    # ElementTree's spelling of a namespaced name: "{uri}local".
    return "{" + name if "}" in name else name


def _parse(text: str, parser: Any, *, error: type[MessageError]) -> None:
    """Feed ``text`` to ``parser``; any failure becomes ``error`` with a fixed message.

    Errors are raised after the except blocks so the parser's exception (which
    may quote the payload) is not chained onto ours.
    """
    problem = None
    try:
        parser.Parse(text, True)
    except _Refused as exc:
        problem = exc.problem
    except (expat.ExpatError, ValueError, LookupError):
        problem = "xml is malformed"
    if problem is not None:
        raise error(problem)


def _xml_value(data: str | bytes, *, max_bytes: int, error: type[MessageError]) -> RawValue:
    """Return the ``<xml>`` root of data as a value, built in one pass over expat.

    A leaf is its trimmed text (an official sample has spaces around its CDATA
    sections); an element with children is a dict of them, a tag seen more than once
    a list in document order; text around children is ignored. The same values
    ElementTree's tree would give (tests/wecom/test_messages.py compares them).
    """
    text = _to_utf8(data, max_bytes=max_bytes, error=error)
    parser = _expat_parser()
    # One frame per open element: [tag, children (None while a leaf), text parts].
    stack: list[list[Any]] = []
    done: list[tuple[str, RawValue]] = []

    def start(name: str, _attributes: list[str]) -> None:
        if len(stack) > MAX_DEPTH:  # this element's depth (the root's is 0)
            raise _Refused("xml is nested too deeply")
        stack.append([_tag(name), None, []])

    def end(_name: str) -> None:
        tag, children, parts = stack.pop()
        value = "".join(parts).strip() if children is None else children
        if not stack:
            done.append((tag, value))
            return
        parent = stack[-1]
        if parent[1] is None:
            parent[1] = {}
        siblings = parent[1]
        if tag not in siblings:
            siblings[tag] = value
        elif isinstance(existing := siblings[tag], list):
            existing.append(value)
        else:
            siblings[tag] = [existing, value]

    def data(chunk: str) -> None:
        stack[-1][2].append(chunk)  # expat reports no text outside the root

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    _parse(text, parser, error=error)
    tag, value = done[0]  # expat accepts exactly one root element
    if tag != "xml":
        raise error("root element must be <xml>")
    return value


def parse_xml(data: str | bytes, *, max_bytes: int = EVENT_MAX_BYTES) -> dict[str, Any]:
    """Return an ``<xml>`` document as a dict of its (trimmed, nested) fields."""
    value = _xml_value(data, max_bytes=max_bytes, error=MalformedMessage)
    return value if isinstance(value, dict) else {}


# --- envelope -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """The outer POST body: routing hints (unauthenticated!) and the ciphertext."""

    to_user_name: str
    agent_id: str
    encrypt: str


def parse_envelope(body: str | bytes, *, max_bytes: int = ENVELOPE_MAX_BYTES) -> Envelope:
    """Return the Envelope of a callback POST body.

    ``to_user_name`` and ``agent_id`` are "" when absent (command URLs send an
    empty AgentID). They are not signed: use them to pick a key, never to trust.
    Only the root's leaf children are read; a child with children of its own is
    ignored rather than guessed at.
    """
    text = _to_utf8(body, max_bytes=max_bytes, error=MalformedEnvelope)
    parser = _expat_parser()
    root: list[str] = []
    fields: dict[str, str] = {}
    repeated: list[str] = []
    # The root child being read: [tag, text parts, has children]; depth of the parser.
    child: list[Any] = []
    depth = 0

    def start(name: str, _attributes: list[str]) -> None:
        nonlocal depth, child
        if depth == 0:
            root.append(_tag(name))
        elif depth == 1:
            child = [_tag(name), [], False]
        elif depth == 2:
            child[2] = True
        depth += 1

    def end(_name: str) -> None:
        nonlocal depth
        depth -= 1
        if depth == 1 and not child[2]:
            tag = child[0]
            if tag in fields:
                repeated.append(tag)
            fields[tag] = "".join(child[1]).strip()

    def data(chunk: str) -> None:
        if depth == 2:  # directly inside a root child
            child[1].append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    _parse(text, parser, error=MalformedEnvelope)
    if root[0] != "xml":
        raise MalformedEnvelope("root element must be <xml>")
    if repeated:
        # Two Encrypt elements could make the signature and the decryption
        # disagree about which ciphertext was meant.
        raise MalformedEnvelope("envelope repeats a field")
    encrypt = fields.get("Encrypt")
    if not encrypt:
        raise MalformedEnvelope("envelope has no Encrypt")
    return Envelope(
        to_user_name=fields.get("ToUserName", ""),
        agent_id=fields.get("AgentID", ""),
        encrypt=encrypt,
    )


# --- field readers ----------------------------------------------------------------------------


def _text(raw: dict[str, Any], key: str) -> str | None:
    """Return the text of a leaf field, or None when the field is absent."""
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedMessage(f"{key} must be a single text field")


def _int(raw: dict[str, Any], key: str) -> int | None:
    """Return a field as int, or None when it is absent or empty."""
    value = _text(raw, key)
    if not value:
        return None
    if not _INT_RE.fullmatch(value):
        raise MalformedMessage(f"{key} must be an integer")
    return int(value)


def _to_int(value: str) -> int:
    if not _INT_RE.fullmatch(value):
        raise MalformedMessage("list item must be an integer")
    return int(value)


_T = TypeVar("_T")


def _csv(raw: dict[str, Any], key: str, convert: Callable[[str], _T]) -> tuple[_T, ...] | None:
    """Return a comma-separated field as a tuple, or None when it is absent.

    Present but empty gives (), which is a real change (e.g. all leaders
    removed), unlike absent.
    """
    value = _text(raw, key)
    if value is None:
        return None
    return tuple(convert(item.strip()) for item in value.split(",") if item.strip())


def _str_csv(raw: dict[str, Any], key: str) -> tuple[str, ...] | None:
    return _csv(raw, key, str)


def _int_csv(raw: dict[str, Any], key: str) -> tuple[int, ...] | None:
    return _csv(raw, key, _to_int)


def _items(value: Any) -> list[dict[str, Any]]:
    """Return a possibly repeated or empty nested field as a list of dicts."""
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, dict) for v in values):
        raise MalformedMessage("expected nested elements")
    return values


def _leaf_items(value: Any) -> tuple[str, ...]:
    """Return the text of each repeated leaf (e.g. MemChangeList/Item)."""
    if value is None or value == "":
        return ()
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in values):
        raise MalformedMessage("expected text items")
    return tuple(values)


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every callback has, whichever URL it came from.

    ``info_type`` is InfoType (command/system URL) or Event (data URL).
    ``auth_corp_id`` is AuthCorpId, or ToUserName for data-URL events.
    ``timestamp`` is TimeStamp, or CreateTime for data-URL events.
    """

    info_type: str
    change_type: str | None = None
    suite_id: str | None = None
    auth_corp_id: str | None = None
    service_corp_id: str | None = None
    timestamp: int | None = None
    # Excluded from hashing: a dict is unhashable, and the typed fields plus the
    # timestamp already identify the event.
    raw: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """A callback type we do not model; ``raw`` holds every field, nested ones too."""


# Command URL: lifecycle (§8.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class SuiteTicket(Event):
    suite_ticket: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateAuth(Event):
    auth_code: str
    state: str | None = None
    # ExtraInfo may be empty, text or nested (SKIT: AuthOpenKfIdList/OpenKfId[]).
    extra_info: RawValue | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeAuth(Event):
    state: str | None = None
    extra_info: RawValue | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelAuth(Event):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetPermanentCode(Event):
    auth_code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeEdition(Event):
    """change_editon (sic, §8.1): the corp's paid edition changed; re-read edition_info.

    Like every 应用版本付费 event it names the corp in PaidCorpId, read into
    ``auth_corp_id``.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareAgentChange(Event):
    """share_agent_change / share_chain_change (``info_type`` tells which).

    On the command URL it carries the upstream CorpId and AgentId; the data-URL
    form (FromUserName=sys) carries only AgentID, so the rest stay None.
    """

    app_id: str | None = None
    corp_id: str | None = None
    agent_id: str | None = None


# Command URL: contacts (§8.2). change_type tells create/update/delete apart.


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactEvent(Event):
    """Base of every change_contact event."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtAttr:
    """One custom member attribute: type 0 is text, type 1 is a web link."""

    name: str | None
    type: int | None
    text: str | None = None
    web_title: str | None = None
    web_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _UserEvent(ContactEvent):
    user_id: str
    open_user_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _UserAttributes(_UserEvent):
    """Member attributes; None means "not in this callback", never "cleared".

    A cleared text field arrives present and empty ("") and a cleared list as
    (); only absent fields are None. Sensitive fields (name, mobile…) reach only
    contact-sync and authorized 代开发 apps, so they are often absent.
    """

    name: str | None = None
    department: tuple[int, ...] | None = None
    main_department: int | None = None
    is_leader_in_dept: tuple[int, ...] | None = None
    direct_leader: tuple[str, ...] | None = None
    mobile: str | None = None
    position: str | None = None
    gender: int | None = None
    email: str | None = None
    biz_mail: str | None = None
    status: int | None = None
    avatar: str | None = None
    alias: str | None = None
    telephone: str | None = None
    ext_attr: tuple[ExtAttr, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateUser(_UserAttributes):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateUser(_UserAttributes):
    """Only changed attributes are present; apply them and leave the rest alone.

    ``new_user_id`` is set on a rename: re-key the member from ``user_id``.
    """

    new_user_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteUser(_UserEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateParty(ContactEvent):
    id: int
    name: str | None = None
    parent_id: int | None = None
    order: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateParty(ContactEvent):
    """Only changed fields are present: None means unchanged."""

    id: int
    name: str | None = None
    parent_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteParty(ContactEvent):
    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateTag(ContactEvent):
    """Tag membership delta; any list may be absent (None) or empty."""

    tag_id: int
    add_user_items: tuple[str, ...] | None = None
    del_user_items: tuple[str, ...] | None = None
    add_party_items: tuple[int, ...] | None = None
    del_party_items: tuple[int, ...] | None = None


# Command URL: customers (§8.2)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalContactChange(Event):
    """change_external_contact; which fields are set depends on change_type."""

    user_id: str | None = None
    external_user_id: str | None = None
    state: str | None = None
    welcome_code: str | None = None
    source: str | None = None
    fail_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalChatChange(Event):
    """change_external_chat: create, update or dismiss of a customer group."""

    chat_id: str
    update_detail: str | None = None
    join_scene: int | None = None
    quit_scene: int | None = None
    mem_change_cnt: int | None = None
    mem_change_list: tuple[str, ...] = ()
    last_mem_ver: str | None = None
    cur_mem_ver: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalTagChange(Event):
    """change_external_tag; ``id`` is empty on a shuffle of all groups."""

    id: str | None = None
    tag_type: str | None = None
    strategy_id: int | None = None


# System-event URL: licenses (§8.3)


@dataclass(frozen=True, slots=True, kw_only=True)
class LicensePaySuccess(Event):
    # For multi-corp orders this is the sub-order id, not the parent order.
    order_id: str
    buyer_user_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LicenseRefund(Event):
    order_id: str
    order_status: int | None = None  # 1 refunded, 2 refund rejected


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivatedAccount:
    """One AccountList entry of auto_activate."""

    active_code: str | None
    type: int | None
    expire_time: int | None
    user_id: str | None
    previous_status: int | None = None
    # Only on auto-renewal: the code this one replaced.
    previous_active_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoActivate(Event):
    scene: int | None = None
    accounts: tuple[ActivatedAccount, ...] = ()


# Data URL (§8.4): MsgType=event


@dataclass(frozen=True, slots=True, kw_only=True)
class DataEvent(Event):
    """Base of data-URL events; ``auth_corp_id`` is ToUserName."""

    from_user_name: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnlicensedNotify(DataEvent):
    """An unlicensed member in the visible range opened the app (FromUserName)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeAppAdmin(DataEvent):
    """The app's admin list changed (FromUserName=sys): read it again."""


# Data-URL events about the app's own activity (path/90240, 90376; FromUserName=sys). The
# alerts carry EffectTime, when the restriction starts: low activity limits the customer
# data the app gets (from 2025-12-18); long disuse closes the app until an admin reopens it.
ACTIVITY_EVENTS = frozenset(
    {
        "low_active_alert",
        "low_active",
        "active_restored",
        "inactive_alert",
        "close_inactive_agent",
        "reopen_inactive_agent",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppActivity(DataEvent):
    """One of ACTIVITY_EVENTS (``info_type`` tells which); ``effect_time`` on the alerts."""

    effect_time: int | None = None


# --- builders -----------------------------------------------------------------------------


def _common(raw: dict[str, Any], info_type: str) -> dict[str, Any]:
    """Return the Event base fields of a payload."""
    timestamp = _int(raw, "TimeStamp")
    if timestamp is None:
        timestamp = _int(raw, "CreateTime")
    auth_corp_id = _text(raw, "AuthCorpId")
    if auth_corp_id is None:
        # 应用版本付费 events (open_order, change_editon …) name the corp PaidCorpId.
        auth_corp_id = _text(raw, "PaidCorpId")
    if auth_corp_id is None and "MsgType" in raw:
        auth_corp_id = _text(raw, "ToUserName")
    return {
        "info_type": info_type,
        "change_type": _text(raw, "ChangeType"),
        "suite_id": _text(raw, "SuiteId"),
        "auth_corp_id": auth_corp_id,
        "service_corp_id": _text(raw, "ServiceCorpId"),
        "timestamp": timestamp,
        "raw": raw,
    }


def _required(raw: dict[str, Any], key: str) -> str:
    value = _text(raw, key)
    if not value:
        raise MalformedMessage(f"{key} is required")
    return value


def _required_int(raw: dict[str, Any], key: str) -> int:
    value = _int(raw, key)
    if value is None:
        raise MalformedMessage(f"{key} is required")
    return value


def _ext_attrs(raw: dict[str, Any]) -> tuple[ExtAttr, ...] | None:
    if "ExtAttr" not in raw:
        return None
    ext = raw["ExtAttr"]
    items = _items(ext.get("Item")) if isinstance(ext, dict) else _items(ext)
    result = []
    for item in items:
        text = item.get("Text")
        web = item.get("Web")
        result.append(
            ExtAttr(
                name=_text(item, "Name"),
                type=_int(item, "Type"),
                text=_text(text, "Value") if isinstance(text, dict) else None,
                web_title=_text(web, "Title") if isinstance(web, dict) else None,
                web_url=_text(web, "Url") if isinstance(web, dict) else None,
            )
        )
    return tuple(result)


def _user_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": _required(raw, "UserID"),
        "open_user_id": _text(raw, "OpenUserID"),
        "name": _text(raw, "Name"),
        "department": _int_csv(raw, "Department"),
        "main_department": _int(raw, "MainDepartment"),
        "is_leader_in_dept": _int_csv(raw, "IsLeaderInDept"),
        "direct_leader": _str_csv(raw, "DirectLeader"),
        "mobile": _text(raw, "Mobile"),
        "position": _text(raw, "Position"),
        "gender": _int(raw, "Gender"),
        "email": _text(raw, "Email"),
        "biz_mail": _text(raw, "BizMail"),
        "status": _int(raw, "Status"),
        "avatar": _text(raw, "Avatar"),
        "alias": _text(raw, "Alias"),
        "telephone": _text(raw, "Telephone"),
        "ext_attr": _ext_attrs(raw),
    }


def _build_suite_ticket(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return SuiteTicket(**common, suite_ticket=_required(raw, "SuiteTicket"))


def _build_create_auth(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return CreateAuth(
        **common,
        auth_code=_required(raw, "AuthCode"),
        state=_text(raw, "State"),
        extra_info=raw.get("ExtraInfo"),
    )


def _build_change_auth(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return ChangeAuth(**common, state=_text(raw, "State"), extra_info=raw.get("ExtraInfo"))


def _build_cancel_auth(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return CancelAuth(**common)


def _build_reset_permanent_code(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return ResetPermanentCode(**common, auth_code=_required(raw, "AuthCode"))


def _build_share_agent_change(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    agent_id = _text(raw, "AgentId")
    return ShareAgentChange(
        **common,
        app_id=_text(raw, "AppId"),
        corp_id=_text(raw, "CorpId"),
        agent_id=agent_id if agent_id is not None else _text(raw, "AgentID"),
    )


def _build_create_user(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return CreateUser(**common, **_user_attributes(raw))


def _build_update_user(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return UpdateUser(**common, **_user_attributes(raw), new_user_id=_text(raw, "NewUserID"))


def _build_delete_user(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return DeleteUser(
        **common, user_id=_required(raw, "UserID"), open_user_id=_text(raw, "OpenUserID")
    )


def _build_create_party(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return CreateParty(
        **common,
        id=_required_int(raw, "Id"),
        name=_text(raw, "Name"),
        parent_id=_int(raw, "ParentId"),
        order=_int(raw, "Order"),
    )


def _build_update_party(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return UpdateParty(
        **common,
        id=_required_int(raw, "Id"),
        name=_text(raw, "Name"),
        parent_id=_int(raw, "ParentId"),
    )


def _build_delete_party(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return DeleteParty(**common, id=_required_int(raw, "Id"))


def _build_update_tag(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return UpdateTag(
        **common,
        tag_id=_required_int(raw, "TagId"),
        add_user_items=_str_csv(raw, "AddUserItems"),
        del_user_items=_str_csv(raw, "DelUserItems"),
        add_party_items=_int_csv(raw, "AddPartyItems"),
        del_party_items=_int_csv(raw, "DelPartyItems"),
    )


def _build_external_contact(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return ExternalContactChange(
        **common,
        user_id=_text(raw, "UserID"),
        external_user_id=_text(raw, "ExternalUserID"),
        state=_text(raw, "State"),
        welcome_code=_text(raw, "WelcomeCode"),
        source=_text(raw, "Source"),
        fail_reason=_text(raw, "FailReason"),
    )


def _build_external_chat(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    members = raw.get("MemChangeList")
    if isinstance(members, dict):
        members = members.get("Item")
    return ExternalChatChange(
        **common,
        chat_id=_required(raw, "ChatId"),
        update_detail=_text(raw, "UpdateDetail"),
        join_scene=_int(raw, "JoinScene"),
        quit_scene=_int(raw, "QuitScene"),
        mem_change_cnt=_int(raw, "MemChangeCnt"),
        mem_change_list=_leaf_items(members),
        last_mem_ver=_text(raw, "LastMemVer"),
        cur_mem_ver=_text(raw, "CurMemVer"),
    )


def _build_external_tag(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return ExternalTagChange(
        **common,
        id=_text(raw, "Id"),
        tag_type=_text(raw, "TagType"),
        strategy_id=_int(raw, "StrategyId"),
    )


def _build_license_pay_success(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return LicensePaySuccess(
        **common, order_id=_required(raw, "OrderId"), buyer_user_id=_text(raw, "BuyerUserId")
    )


def _build_license_refund(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return LicenseRefund(
        **common, order_id=_required(raw, "OrderId"), order_status=_int(raw, "OrderStatus")
    )


def _build_auto_activate(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    # path/95994 shows one AccountList; a batch may repeat the element
    # [unverified], which the raw dict turns into a list. Read both alike.
    accounts = tuple(
        ActivatedAccount(
            active_code=_text(item, "ActiveCode"),
            type=_int(item, "Type"),
            expire_time=_int(item, "ExpireTime"),
            user_id=_text(item, "UserId"),
            previous_status=_int(item, "PreviousStatus"),
            previous_active_code=_text(item, "PreviousActiveCode"),
        )
        for item in _items(raw.get("AccountList"))
    )
    return AutoActivate(**common, scene=_int(raw, "Scene"), accounts=accounts)


def _data_fields(raw: dict[str, Any]) -> dict[str, Any]:
    return {"from_user_name": _text(raw, "FromUserName"), "agent_id": _text(raw, "AgentID")}


def _build_unlicensed_notify(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return UnlicensedNotify(**common, **_data_fields(raw))


def _build_change_app_admin(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return ChangeAppAdmin(**common, **_data_fields(raw))


def _build_app_activity(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return AppActivity(**common, **_data_fields(raw), effect_time=_int(raw, "EffectTime"))


def _build_change_edition(raw: dict[str, Any], common: dict[str, Any]) -> Event:
    return ChangeEdition(**common)


_Builder = Callable[[dict[str, Any], dict[str, Any]], Event]

# (info_type, change_type) -> builder; change_type None matches any change type.
# Data-URL events share the table: 代开发 corp-side change_contact arrives as
# MsgType=event/Event=change_contact with the same fields (§7.1).
_BUILDERS: dict[tuple[str, str | None], _Builder] = {
    ("suite_ticket", None): _build_suite_ticket,
    ("create_auth", None): _build_create_auth,
    ("change_auth", None): _build_change_auth,
    ("cancel_auth", None): _build_cancel_auth,
    ("reset_permanent_code", None): _build_reset_permanent_code,
    ("share_agent_change", None): _build_share_agent_change,
    ("share_chain_change", None): _build_share_agent_change,
    ("change_contact", "create_user"): _build_create_user,
    ("change_contact", "update_user"): _build_update_user,
    ("change_contact", "delete_user"): _build_delete_user,
    ("change_contact", "create_party"): _build_create_party,
    ("change_contact", "update_party"): _build_update_party,
    ("change_contact", "delete_party"): _build_delete_party,
    ("change_contact", "update_tag"): _build_update_tag,
    ("change_external_contact", None): _build_external_contact,
    ("change_external_chat", None): _build_external_chat,
    ("change_external_tag", None): _build_external_tag,
    ("license_pay_success", None): _build_license_pay_success,
    ("license_refund", None): _build_license_refund,
    ("auto_activate", None): _build_auto_activate,
    ("unlicensed_notify", None): _build_unlicensed_notify,
    ("change_app_admin", None): _build_change_app_admin,
    ("change_editon", None): _build_change_edition,
    **{(name, None): _build_app_activity for name in ACTIVITY_EVENTS},
}


def _info_type(raw: dict[str, Any]) -> str:
    """Return the dispatch name: InfoType, else Event for MsgType=event, else MsgType."""
    info_type = _text(raw, "InfoType")
    if info_type:
        return info_type
    msg_type = _text(raw, "MsgType")
    if msg_type == "event":
        event = _text(raw, "Event")
        if event:
            return event
    if msg_type:
        # A plain message (text, image…) or an event without a name: kept as
        # UnknownEvent under its MsgType.
        return msg_type
    raise MalformedMessage("payload has neither InfoType nor MsgType")


def parse_event_header(xml: str | bytes, *, max_bytes: int = EVENT_MAX_BYTES) -> Event:
    """Return only the Event base fields of a decrypted payload, as a plain Event.

    For the callback request path, which stores the payload and needs only its type,
    suite, corp and time: half the cost of parse_event. The same XML rules apply
    (MessageError for anything malformed or hostile); type-specific fields are not
    read, so a payload whose own fields are wrong passes here and fails parse_event.
    """
    raw = parse_xml(xml, max_bytes=max_bytes)
    return Event(**_common(raw, _info_type(raw)))


def parse_event(xml: str | bytes, *, max_bytes: int = EVENT_MAX_BYTES) -> Event:
    """Return the typed Event for a decrypted callback payload.

    Types not modelled here come back as UnknownEvent with every field in
    ``raw``. Raises MessageError (only) for anything malformed or hostile.
    """
    raw = parse_xml(xml, max_bytes=max_bytes)
    info_type = _info_type(raw)
    common = _common(raw, info_type)
    builder = _BUILDERS.get((info_type, common["change_type"])) or _BUILDERS.get((info_type, None))
    if builder is None:
        return UnknownEvent(**common)
    return builder(raw, common)
