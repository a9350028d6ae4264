"""Envelope and event parsing (protocol doc §7.2 and §8), including hostile XML."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from wecom.crypto import CallbackCrypto
from wecom.messages import ENVELOPE_MAX_BYTES
from wecom.messages import ActivatedAccount
from wecom.messages import AutoActivate
from wecom.messages import CancelAuth
from wecom.messages import ChangeAppAdmin
from wecom.messages import ChangeAuth
from wecom.messages import ContactEvent
from wecom.messages import CreateAuth
from wecom.messages import CreateParty
from wecom.messages import CreateUser
from wecom.messages import DataEvent
from wecom.messages import DeleteParty
from wecom.messages import DeleteUser
from wecom.messages import Envelope
from wecom.messages import Event
from wecom.messages import ExtAttr
from wecom.messages import ExternalChatChange
from wecom.messages import ExternalContactChange
from wecom.messages import ExternalTagChange
from wecom.messages import LicensePaySuccess
from wecom.messages import LicenseRefund
from wecom.messages import MalformedEnvelope
from wecom.messages import MalformedMessage
from wecom.messages import MessageError
from wecom.messages import MessageTooLarge
from wecom.messages import ResetPermanentCode
from wecom.messages import ShareAgentChange
from wecom.messages import SuiteTicket
from wecom.messages import UnknownEvent
from wecom.messages import UnlicensedNotify
from wecom.messages import UpdateParty
from wecom.messages import UpdateTag
from wecom.messages import UpdateUser
from wecom.messages import parse_envelope
from wecom.messages import parse_event
from wecom.messages import parse_event_header
from wecom.messages import parse_xml

FIXTURES = Path(__file__).parent / "fixtures"
SUITE = "wwsuite0000000001"
CORP = "wwcorp00000000001"
PROVIDER = "wwprovider0000001"

COMMAND = {"suite_id": SUITE, "service_corp_id": None}
CORP_COMMAND = {**COMMAND, "auth_corp_id": CORP}
SYSTEM = {"suite_id": None, "service_corp_id": PROVIDER, "auth_corp_id": CORP}
DATA = {"suite_id": None, "service_corp_id": None, "auth_corp_id": CORP}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# fixture -> (class, fields that must match exactly)
CASES: dict[str, tuple[type[Event], dict]] = {
    "suite_ticket.xml": (
        SuiteTicket,
        {
            **COMMAND,
            "info_type": "suite_ticket",
            "change_type": None,
            "auth_corp_id": None,
            "timestamp": 1700000000,
            "suite_ticket": "fake-suite-ticket-0001",
        },
    ),
    "create_auth.xml": (
        CreateAuth,
        {
            **COMMAND,
            "info_type": "create_auth",
            "auth_corp_id": None,
            "timestamp": 1700000001,
            "auth_code": "fake-auth-code-0001",
            "state": "tenant-signup-42",
            "extra_info": "",
        },
    ),
    "change_auth.xml": (
        ChangeAuth,
        {
            **CORP_COMMAND,
            "info_type": "change_auth",
            "timestamp": 1700000002,
            "state": "",
            "extra_info": {"AuthOpenKfIdList": {"OpenKfId": ["wkfake0001", "wkfake0002"]}},
        },
    ),
    "cancel_auth.xml": (
        CancelAuth,
        {**CORP_COMMAND, "info_type": "cancel_auth", "timestamp": 1700000003},
    ),
    "reset_permanent_code.xml": (
        ResetPermanentCode,
        {
            "info_type": "reset_permanent_code",
            "suite_id": "dktemplate0000001",
            "auth_corp_id": None,
            "timestamp": 1700000004,
            "auth_code": "fake-auth-code-0002",
        },
    ),
    "share_agent_change.xml": (
        ShareAgentChange,
        {
            **COMMAND,
            "info_type": "share_agent_change",
            "timestamp": 1700000005,
            "app_id": "7",
            "corp_id": "wwupstream0000001",
            "agent_id": "1000005",
        },
    ),
    "share_chain_change.xml": (
        ShareAgentChange,
        {
            **COMMAND,
            "info_type": "share_chain_change",
            "timestamp": 1700000006,
            "app_id": None,
            "corp_id": "wwupstream0000002",
            "agent_id": "1000006",
        },
    ),
    "change_contact_create_user.xml": (
        CreateUser,
        {
            **CORP_COMMAND,
            "info_type": "change_contact",
            "change_type": "create_user",
            "timestamp": 1700000010,
            "user_id": "zhangsan",
            "open_user_id": "woFAKEopenuser0001",
            "name": "张三",
            "department": (1, 2, 3),
            "main_department": 1,
            "is_leader_in_dept": (1, 0, 0),
            "direct_leader": ("lisi", "wangwu"),
            "mobile": "13800000000",
            "position": "产品经理",
            "gender": 1,
            "email": "zhangsan@example.com",
            "biz_mail": "zhangsan@corp.example.com",
            "status": 1,
            "avatar": "https://example.com/avatar/zhangsan.png",
            "alias": "san",
            "telephone": "020-00000000",
            "ext_attr": (
                ExtAttr(name="爱好", type=0, text="旅游"),
                ExtAttr(
                    name="主页",
                    type=1,
                    web_title="个人主页",
                    web_url="https://example.com/zhangsan",
                ),
            ),
        },
    ),
    "change_contact_update_user.xml": (
        UpdateUser,
        {
            **CORP_COMMAND,
            "change_type": "update_user",
            "timestamp": 1700000011,
            "user_id": "zhangsan",
            "open_user_id": "woFAKEopenuser0001",
            "new_user_id": "zhangsan2",
            "department": (4,),
            "is_leader_in_dept": (1,),
            "direct_leader": (),
            "mobile": "",
            "status": 2,
            # Absent in the payload: unchanged, so None and never a default.
            "name": None,
            "main_department": None,
            "position": None,
            "gender": None,
            "email": None,
            "biz_mail": None,
            "avatar": None,
            "alias": None,
            "telephone": None,
            "ext_attr": None,
        },
    ),
    "change_contact_delete_user.xml": (
        DeleteUser,
        {
            **CORP_COMMAND,
            "change_type": "delete_user",
            "timestamp": 1700000012,
            "user_id": "zhangsan2",
            "open_user_id": "woFAKEopenuser0001",
        },
    ),
    "change_contact_create_party.xml": (
        CreateParty,
        {
            **CORP_COMMAND,
            "change_type": "create_party",
            "timestamp": 1700000013,
            "id": 5,
            "name": "研发部",
            "parent_id": 1,
            "order": 100000,
        },
    ),
    "change_contact_update_party.xml": (
        UpdateParty,
        {
            **CORP_COMMAND,
            "change_type": "update_party",
            "timestamp": 1700000014,
            "id": 5,
            "name": None,
            "parent_id": 2,
        },
    ),
    "change_contact_delete_party.xml": (
        DeleteParty,
        {**CORP_COMMAND, "change_type": "delete_party", "timestamp": 1700000015, "id": 5},
    ),
    "change_contact_update_tag.xml": (
        UpdateTag,
        {
            **CORP_COMMAND,
            "change_type": "update_tag",
            "timestamp": 1700000016,
            "tag_id": 12,
            "add_user_items": ("zhangsan", "lisi"),
            "del_user_items": ("wangwu",),
            "add_party_items": (2, 3),
            "del_party_items": None,
        },
    ),
    "change_external_contact_add_external_contact.xml": (
        ExternalContactChange,
        {
            **CORP_COMMAND,
            "info_type": "change_external_contact",
            "change_type": "add_external_contact",
            "timestamp": 1700000020,
            "user_id": "zhangsan",
            "external_user_id": "wmFAKEexternal0001",
            "state": "channel-7",
            "welcome_code": "fake-welcome-code",
            "fail_reason": None,
        },
    ),
    "change_external_contact_transfer_fail.xml": (
        ExternalContactChange,
        {
            **CORP_COMMAND,
            "change_type": "transfer_fail",
            "timestamp": 1700000021,
            "user_id": "zhangsan",
            "external_user_id": "wmFAKEexternal0001",
            "fail_reason": "customer_refused",
            "welcome_code": None,
        },
    ),
    "change_external_chat_update.xml": (
        ExternalChatChange,
        {
            **CORP_COMMAND,
            "info_type": "change_external_chat",
            "change_type": "update",
            "timestamp": 1700000022,
            "chat_id": "wrFAKEchat0001",
            "update_detail": "add_member",
            "join_scene": 3,
            "quit_scene": None,
            "mem_change_cnt": 2,
            "mem_change_list": ("wmFAKEexternal0001", "lisi"),
            "last_mem_ver": "fake-mem-ver-1",
            "cur_mem_ver": "fake-mem-ver-2",
        },
    ),
    "change_external_tag_create.xml": (
        ExternalTagChange,
        {
            **CORP_COMMAND,
            "info_type": "change_external_tag",
            "change_type": "create",
            "timestamp": 1700000023,
            "id": "etFAKEtag0001",
            "tag_type": "tag",
            "strategy_id": 1,
        },
    ),
    "license_pay_success.xml": (
        LicensePaySuccess,
        {
            **SYSTEM,
            "info_type": "license_pay_success",
            "timestamp": 1700000030,
            "order_id": "OIFAKE000000000001",
            "buyer_user_id": "buyer01",
        },
    ),
    "license_refund.xml": (
        LicenseRefund,
        {
            **SYSTEM,
            "info_type": "license_refund",
            "timestamp": 1700000031,
            "order_id": "OIFAKE000000000001",
            "order_status": 1,
        },
    ),
    "auto_activate.xml": (
        AutoActivate,
        {
            **SYSTEM,
            "info_type": "auto_activate",
            "timestamp": 1700000032,
            "scene": 1,
            "accounts": (
                ActivatedAccount(
                    active_code="LCFAKE000000000001",
                    type=2,
                    expire_time=1731536032,
                    user_id="zhangsan",
                    previous_status=1,
                ),
            ),
        },
    ),
    "auto_activate_multiple.xml": (
        AutoActivate,
        {
            **SYSTEM,
            "scene": 2,
            "accounts": (
                ActivatedAccount(
                    active_code="LCFAKE000000000002",
                    type=1,
                    expire_time=1731536033,
                    user_id="lisi",
                    previous_status=3,
                    previous_active_code="LCFAKE000000000000",
                ),
                ActivatedAccount(
                    active_code="LCFAKE000000000003",
                    type=2,
                    expire_time=1731536034,
                    user_id="wangwu",
                    previous_status=1,
                ),
            ),
        },
    ),
    "unlicensed_notify.xml": (
        UnlicensedNotify,
        {
            **DATA,
            "info_type": "unlicensed_notify",
            "change_type": None,
            "timestamp": 1700000040,
            "from_user_name": "zhangsan",
            "agent_id": "1000002",
        },
    ),
    "change_app_admin.xml": (
        ChangeAppAdmin,
        {
            **DATA,
            "info_type": "change_app_admin",
            "timestamp": 1700000041,
            "from_user_name": "sys",
            "agent_id": "1000002",
        },
    ),
    "data_share_agent_change.xml": (
        ShareAgentChange,
        {
            **DATA,
            "info_type": "share_agent_change",
            "timestamp": 1700000042,
            "corp_id": None,
            "agent_id": "1000002",
        },
    ),
    "data_change_contact_update_user.xml": (
        UpdateUser,
        {
            **DATA,
            "info_type": "change_contact",
            "change_type": "update_user",
            "timestamp": 1700000043,
            "user_id": "zhangsan",
            "position": "总监",
            "department": None,
            "mobile": None,
        },
    ),
    "unknown_register_corp.xml": (
        UnknownEvent,
        {
            "info_type": "register_corp",
            "service_corp_id": PROVIDER,
            "auth_corp_id": "wwcorp00000000002",
            "timestamp": 1700000050,
        },
    ),
}


def test_every_event_fixture_has_a_case():
    event_fixtures = {p.name for p in FIXTURES.glob("*.xml")} - {"envelope_command.xml"}

    assert event_fixtures == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_parses_to_its_dataclass(name):
    cls, expected = CASES[name]

    event = parse_event(fixture(name))

    assert type(event) is cls
    assert {key: getattr(event, key) for key in expected} == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_raw_keeps_every_top_level_field(name):
    event = parse_event(fixture(name))

    assert event.raw == parse_xml(fixture(name))
    assert event.raw["InfoType" if "InfoType" in event.raw else "Event"] == event.info_type


@pytest.mark.parametrize("name", sorted(CASES))
def test_events_are_frozen_slotted_and_hashable(name):
    event = parse_event(fixture(name))

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.info_type = "other"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    hash(event)


@pytest.mark.parametrize("name", sorted(CASES))
def test_event_header_has_the_base_fields_of_the_full_parse(name):
    full = parse_event(fixture(name))

    header = parse_event_header(fixture(name))

    assert type(header) is Event
    for base_field in dataclasses.fields(Event):
        assert getattr(header, base_field.name) == getattr(full, base_field.name)


def test_event_header_leaves_type_specific_fields_to_the_full_parse():
    # A create_user without its required UserID: authentic payloads are stored by the
    # request path (header) and fail in processing (full parse), never dropped.
    xml = (
        "<xml><SuiteId>s</SuiteId><AuthCorpId>c</AuthCorpId><InfoType>change_contact</InfoType>"
        "<TimeStamp>1</TimeStamp><ChangeType>create_user</ChangeType></xml>"
    )
    header = parse_event_header(xml)
    assert (header.info_type, header.change_type, header.auth_corp_id) == (
        "change_contact",
        "create_user",
        "c",
    )
    with pytest.raises(MessageError):
        parse_event(xml)


@pytest.mark.parametrize("name", sorted(CASES))
def test_str_and_bytes_parse_alike(name):
    assert parse_event(fixture(name).decode()) == parse_event(fixture(name))


def test_whitespace_around_cdata_is_trimmed():
    event = parse_event(fixture("suite_ticket.xml"))

    assert event.info_type == "suite_ticket"
    assert event.raw["InfoType"] == "suite_ticket"


def test_contact_events_share_a_base_class():
    for name in sorted(CASES):
        event = parse_event(fixture(name))
        assert isinstance(event, ContactEvent) == (event.info_type == "change_contact")


def test_data_events_share_a_base_class():
    for name in ("unlicensed_notify.xml", "change_app_admin.xml"):
        assert isinstance(parse_event(fixture(name)), DataEvent)


# --- comma lists and partial updates ---------------------------------------------------------


def _contact(change_type: str, body: str) -> str:
    return (
        f"<xml><SuiteId>{SUITE}</SuiteId><AuthCorpId>{CORP}</AuthCorpId>"
        f"<InfoType>change_contact</InfoType><TimeStamp>1700000000</TimeStamp>"
        f"<ChangeType>{change_type}</ChangeType>{body}</xml>"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", (1,)), ("1,2,3", (1, 2, 3)), (" 1 , 2 ", (1, 2)), ("", ()), ("1,,2,", (1, 2))],
)
def test_department_comma_list(value, expected):
    event = parse_event(
        _contact("update_user", f"<UserID>u</UserID><Department>{value}</Department>")
    )

    assert event.department == expected


def test_update_user_with_only_user_id_changes_nothing():
    event = parse_event(_contact("update_user", "<UserID>u</UserID>"))

    assert isinstance(event, UpdateUser)
    changed = {
        f.name: getattr(event, f.name)
        for f in dataclasses.fields(event)
        if f.name not in {"info_type", "change_type", "suite_id", "auth_corp_id", "timestamp"}
        and f.name not in {"raw", "service_corp_id", "user_id"}
    }
    assert set(changed.values()) == {None}


def test_update_tag_with_no_lists_keeps_them_absent():
    event = parse_event(_contact("update_tag", "<TagId>1</TagId>"))

    assert (event.add_user_items, event.del_user_items) == (None, None)
    assert (event.add_party_items, event.del_party_items) == (None, None)


def test_update_tag_with_empty_list_is_an_empty_tuple():
    event = parse_event(_contact("update_tag", "<TagId>1</TagId><DelUserItems></DelUserItems>"))

    assert event.del_user_items == ()


def test_unknown_change_type_is_kept_as_unknown_event():
    event = parse_event(_contact("merge_user", "<UserID>u</UserID><Extra><A>1</A></Extra>"))

    assert type(event) is UnknownEvent
    assert event.change_type == "merge_user"
    assert event.raw["Extra"] == {"A": "1"}


def test_unknown_info_type_keeps_nested_and_repeated_fields():
    event = parse_event(fixture("unknown_register_corp.xml"))

    assert event.raw["ContactSync"] == {"AccessToken": "fake-contact-token", "ExpiresIn": "1800"}
    assert event.raw["AuthUserInfo"] == {"UserId": "admin01"}
    assert event.raw["TemplateId"] == "tpl01"


def test_plain_message_is_unknown_event_under_its_msg_type():
    event = parse_event(
        "<xml><ToUserName>wwc</ToUserName><FromUserName>u</FromUserName>"
        "<CreateTime>1700000000</CreateTime><MsgType>text</MsgType>"
        "<Content>你好</Content><MsgId>1234567890</MsgId><AgentID>1</AgentID></xml>"
    )

    assert type(event) is UnknownEvent
    assert (event.info_type, event.auth_corp_id, event.timestamp) == ("text", "wwc", 1700000000)
    assert event.raw["Content"] == "你好"


def test_ext_attr_absent_is_none_and_empty_is_empty():
    absent = parse_event(_contact("update_user", "<UserID>u</UserID>"))
    empty = parse_event(_contact("update_user", "<UserID>u</UserID><ExtAttr></ExtAttr>"))

    assert absent.ext_attr is None
    assert empty.ext_attr == ()


# --- envelope ---------------------------------------------------------------------------------


def test_envelope_fixture():
    assert parse_envelope(fixture("envelope_command.xml")) == Envelope(
        to_user_name=SUITE, agent_id="", encrypt="RkFLRWNpcGhlcnRleHQrLz0="
    )


def test_envelope_without_optional_fields():
    envelope = parse_envelope(b"<xml><Encrypt>abc=</Encrypt></xml>")

    assert envelope == Envelope(to_user_name="", agent_id="", encrypt="abc=")


def test_envelope_round_trip_through_crypto():
    crypto = CallbackCrypto("fakeToken", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", SUITE)
    encrypted, signature = crypto.encrypt(fixture("create_auth.xml"), "1700000001", "n0nce")
    body = (
        f"<xml><ToUserName><![CDATA[{SUITE}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()

    envelope = parse_envelope(body)
    event = parse_event(crypto.decrypt(signature, "1700000001", "n0nce", envelope.encrypt))

    assert envelope.to_user_name == SUITE
    assert isinstance(event, CreateAuth)
    assert event.auth_code == "fake-auth-code-0001"


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>a</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt>   </Encrypt></xml>",
        b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
        b"<xml><Encrypt><X>a</X></Encrypt></xml>",
        b"<root><Encrypt>a</Encrypt></root>",
    ],
)
def test_envelope_without_one_usable_encrypt_is_rejected(body):
    with pytest.raises(MalformedEnvelope):
        parse_envelope(body)


def test_envelope_size_cap_is_configurable():
    body = b"<xml><Encrypt>" + b"A" * 1000 + b"</Encrypt></xml>"

    assert parse_envelope(body, max_bytes=len(body)).encrypt == "A" * 1000
    with pytest.raises(MessageTooLarge):
        parse_envelope(body, max_bytes=len(body) - 1)


def test_envelope_over_default_cap_is_rejected():
    body = b"<xml><Encrypt>" + b"A" * ENVELOPE_MAX_BYTES + b"</Encrypt></xml>"

    with pytest.raises(MessageTooLarge) as info:
        parse_envelope(body)
    # One family: the view can catch MalformedEnvelope or MessageError alike.
    assert isinstance(info.value, MalformedEnvelope)


def test_too_large_str_is_rejected_without_encoding_it():
    with pytest.raises(MessageTooLarge):
        parse_event("<xml>" + "企" * 30000 + "</xml>")


# --- hostile input ----------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><InfoType>suite_ticket</InfoType><Encrypt>&lol9;</Encrypt><SuiteTicket>&lol9;</SuiteTicket></xml>
"""

QUADRATIC_BLOWUP = (
    b'<!DOCTYPE xml [<!ENTITY a "' + b"x" * 5000 + b'">]>'
    b"<xml><InfoType>suite_ticket</InfoType><Encrypt>" + b"&a;" * 3000 + b"</Encrypt></xml>"
)

HOSTILE = {
    "billion_laughs": BILLION_LAUGHS,
    "quadratic_blowup": QUADRATIC_BLOWUP,
    "xxe_system_file": (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><InfoType>suite_ticket</InfoType><Encrypt>&xxe;</Encrypt></xml>"
    ),
    "xxe_system_http": (
        b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>'
        b"<xml><InfoType>suite_ticket</InfoType><Encrypt>&xxe;</Encrypt></xml>"
    ),
    "parameter_entity": (
        b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
        b"<xml><InfoType>suite_ticket</InfoType><Encrypt>a</Encrypt></xml>"
    ),
    "external_dtd": (
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">'
        b"<xml><InfoType>suite_ticket</InfoType><Encrypt>a</Encrypt></xml>"
    ),
    "plain_doctype": (
        b"<!DOCTYPE xml><xml><InfoType>suite_ticket</InfoType><Encrypt>a</Encrypt></xml>"
    ),
    "undefined_entity": b"<xml><InfoType>suite_ticket</InfoType><Encrypt>&xxe;</Encrypt></xml>",
    "truncated": b"<xml><InfoType>suite_ticket</InfoType><Encrypt>abc",
    "truncated_fixture": fixture("create_auth.xml")[:-20],
    "empty": b"",
    "whitespace": b"   \n",
    "not_xml": b"success",
    "json": b'{"Encrypt": "abc", "InfoType": "suite_ticket"}',
    "binary_garbage": bytes(range(256)) * 4,
    "nul_bytes": b"<xml>\x00<InfoType>suite_ticket</InfoType><Encrypt>a</Encrypt></xml>",
    "wrong_root": b"<root><InfoType>suite_ticket</InfoType><Encrypt>a</Encrypt></root>",
    "two_roots": b"<xml><Encrypt>a</Encrypt></xml><xml><Encrypt>b</Encrypt></xml>",
    "gbk_declared": (
        '<?xml version="1.0" encoding="gbk"?><xml><InfoType>企业</InfoType>'
        "<Encrypt>企业</Encrypt></xml>"
    ).encode("gbk"),
    "latin1_bytes": b"<xml><InfoType>\xe9</InfoType><Encrypt>\xe9</Encrypt></xml>",
    "utf16": "<xml><InfoType>suite_ticket</InfoType><Encrypt>a</Encrypt></xml>".encode("utf-16"),
    "too_large": b"<xml><InfoType>x</InfoType><Encrypt>" + b"A" * 70000 + b"</Encrypt></xml>",
    "deep_nesting": b"<xml><InfoType>x</InfoType><Encrypt>a</Encrypt>"
    + b"<a>" * 5000
    + b"</a>" * 5000
    + b"</xml>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("parse", [parse_event, parse_event_header])
def test_hostile_input_to_parse_event_raises_message_error(name, parse):
    with pytest.raises(MessageError) as info:
        parse(HOSTILE[name])
    # Our messages never echo the payload (it may be an attacker's or a secret).
    assert "passwd" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    "name", sorted(set(HOSTILE) - {"deep_nesting"})
)  # the envelope ignores nested fields
def test_hostile_input_to_parse_envelope_raises_message_error(name):
    with pytest.raises(MessageError):
        parse_envelope(HOSTILE[name])


def test_lone_surrogate_text_is_rejected():
    with pytest.raises(MessageError):
        parse_event("<xml><InfoType>\ud800</InfoType></xml>")


@pytest.mark.parametrize("body", [None, 12, ["<xml/>"]])
def test_non_text_input_is_rejected(body):
    with pytest.raises(MessageError):
        parse_envelope(body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "xml",
    [
        "<xml><Foo>1</Foo></xml>",  # neither InfoType nor MsgType
        "<xml><InfoType>suite_ticket</InfoType><TimeStamp>soon</TimeStamp></xml>",
        "<xml><InfoType>suite_ticket</InfoType><TimeStamp>1</TimeStamp></xml>",  # no ticket
        "<xml><InfoType>create_auth</InfoType><AuthCode><A>1</A></AuthCode></xml>",
        "<xml><InfoType>cancel_auth</InfoType><AuthCorpId>a</AuthCorpId>"
        "<AuthCorpId>b</AuthCorpId></xml>",
        _contact("create_user", "<UserID>u</UserID><Department>1,x</Department>"),
        _contact("create_user", "<UserID>u</UserID><Gender>１</Gender>"),  # fullwidth digit
        _contact("create_user", "<Name>no user id</Name>"),
        _contact("create_party", "<Name>no id</Name>"),
        _contact("update_tag", "<TagId>1</TagId><AddPartyItems>1,two</AddPartyItems>"),
        "<xml><InfoType>auto_activate</InfoType><AccountList>text</AccountList></xml>",
        "<xml><InfoType>license_pay_success</InfoType></xml>",
    ],
)
def test_invalid_field_values_raise_malformed_message(xml):
    with pytest.raises(MalformedMessage):
        parse_event(xml)


# --- property tests ---------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=2000), st.text(max_size=2000)))
def test_arbitrary_input_raises_only_message_error(data):
    for parse in (parse_envelope, parse_event):
        try:
            result = parse(data)
        except MessageError:
            continue
        assert isinstance(result, Envelope | Event)


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


INFO_TYPES = sorted({parse_event(fixture(name)).info_type for name in CASES} | {"x"})
FIELD_NAMES = sorted(
    {key for name in CASES for key in parse_xml(fixture(name))}
    | {"NewUserID", "DelPartyItems", "QuitScene", "Source", "PreviousActiveCode"}
)
xml_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
leaf = st.one_of(xml_text, st.integers(-5, 2**40).map(str), st.just("1,2"))


@st.composite
def callbacks(draw) -> str:
    """Return a well-formed <xml> callback with random known fields and values."""
    info_type = draw(st.sampled_from(INFO_TYPES))
    fields = draw(st.lists(st.tuples(st.sampled_from(FIELD_NAMES), leaf), max_size=15))
    parts = [f"<InfoType>{_escape(info_type)}</InfoType>"]
    if draw(st.booleans()):
        change = draw(st.sampled_from(["create_user", "update_user", "update_tag", "update"]))
        parts.append(f"<ChangeType>{change}</ChangeType>")
    for name, value in fields:
        if draw(st.booleans()):
            parts.append(f"<{name}>{_escape(value)}</{name}>")
        else:  # nested where a text field is expected, or an Item list
            parts.append(f"<{name}><Item>{_escape(value)}</Item><Item>x</Item></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xml=callbacks())
def test_random_callbacks_parse_or_raise_only_message_error(xml):
    try:
        event = parse_event(xml)
    except MessageError:
        return
    assert isinstance(event, Event)
    hash(event)


# --- the parser against defusedxml ----------------------------------------------------------
# The messages module parses with expat directly and installs defusedxml's protections
# itself (_expat_parser). The reference below is how it parsed before (issue 17):
# defusedxml's ElementTree with every protection on, then the tree turned into values.
# Every input must give the same value, or be refused by both.


def _reference_root(data):
    import defusedxml.ElementTree as SafeET

    from wecom.safexml import _to_utf8

    text = _to_utf8(data, max_bytes=ENVELOPE_MAX_BYTES, error=MessageError)
    try:
        root = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except Exception as exc:
        raise MessageError("refused") from exc
    if root.tag != "xml":
        raise MessageError("root element must be <xml>")
    return root


def _reference_value(element, depth=0):
    from wecom.messages import MAX_DEPTH

    if depth > MAX_DEPTH:
        raise MessageError("xml is nested too deeply")
    if len(element) == 0:
        return (element.text or "").strip()
    children = {}
    for child in element:
        value = _reference_value(child, depth + 1)
        if child.tag not in children:
            children[child.tag] = value
        elif isinstance(existing := children[child.tag], list):
            existing.append(value)
        else:
            children[child.tag] = [existing, value]
    return children


def reference_parse_xml(data):
    value = _reference_value(_reference_root(data))
    return value if isinstance(value, dict) else {}


def reference_parse_envelope(data):
    fields = {}
    for child in _reference_root(data):
        if len(child):
            continue
        if child.tag in fields:
            raise MessageError("envelope repeats a field")
        fields[child.tag] = (child.text or "").strip()
    if not fields.get("Encrypt"):
        raise MessageError("envelope has no Encrypt")
    return Envelope(
        to_user_name=fields.get("ToUserName", ""),
        agent_id=fields.get("AgentID", ""),
        encrypt=fields["Encrypt"],
    )


def outcome(parse, data):
    try:
        return parse(data)
    except MessageError as exc:
        return type(exc) if parse in (parse_xml, parse_envelope) else MessageError


def assert_parsers_agree(data):
    xml, envelope = outcome(parse_xml, data), outcome(parse_envelope, data)
    assert (xml if isinstance(xml, dict) else MessageError) == outcome(reference_parse_xml, data)
    assert (envelope if isinstance(envelope, Envelope) else MessageError) == outcome(
        reference_parse_envelope, data
    )
    if not isinstance(xml, dict):  # each entry point raises its own family
        assert issubclass(xml, MalformedMessage)
    if not isinstance(envelope, Envelope):
        assert issubclass(envelope, MalformedEnvelope)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_as_defusedxml_refuses_it(name):
    assert_parsers_agree(HOSTILE[name])


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.xml")))
def test_fixtures_parse_as_defusedxml_parses_them(name):
    assert_parsers_agree(fixture(name))


@pytest.mark.parametrize(
    "xml",
    [
        # Namespaces, attributes, comments, processing instructions, CDATA, the five
        # predefined entities and character references, mixed content, empty and
        # self-closing elements, whitespace outside the root, an XML declaration.
        '<?xml version="1.0" encoding="utf-8"?>\n<xml a="1"><!-- c --><?pi x?>'
        "<Encrypt><![CDATA[ a&b ]]></Encrypt><T>&lt;&amp;&gt;&quot;&apos;&#x41;&#66;</T>"
        "<M>head<X>1</X>tail<X>2</X><X><Y/></X></M><E/><F></F></xml>\n  ",
        '<xml xmlns:n="urn:x"><n:Encrypt>a</n:Encrypt><Encrypt>b</Encrypt></xml>',
        '<xml xmlns="urn:x"><Encrypt>a</Encrypt></xml>',
        "<n:xml xmlns:n='urn:x'><Encrypt>a</Encrypt></n:xml>",
        "<xml><u:Encrypt>a</u:Encrypt></xml>",  # unbound prefix
        "<xml><Encrypt>a</Encrypt><Encrypt><X>b</X></Encrypt></xml>",
        "<xml><Encrypt><X>b</X></Encrypt><Encrypt>a</Encrypt></xml>",
        "<xml>text only</xml>",
        "<xml><Encrypt>a</Encrypt>" + "<a>" * 16 + "</a>" * 16 + "</xml>",
        "<xml><Encrypt>a</Encrypt>" + "<a>" * 17 + "</a>" * 17 + "</xml>",
        '<xml><Encrypt>a</Encrypt><!DOCTYPE x [<!ENTITY e "v">]></xml>',
        '<?xml version="1.0" standalone="yes"?><!DOCTYPE xml [<!ENTITY e "v">]><xml>&e;</xml>',
        "<xml><Encrypt>\u4f01\u4e1a\U0001f600</Encrypt></xml>",
        "<xml><Encrypt>a</Encrypt></xml><!-- after -->",
        "<xml><Encrypt>a</Encrypt></xml>junk",
    ],
)
def test_xml_features_parse_as_defusedxml_parses_them(xml):
    assert_parsers_agree(xml)
    assert_parsers_agree(xml.encode())


# Mostly valid constructs, a few refused ones (an undefined entity, an unbound prefix).
_VALID_TEXTS = ["", " v ", "abc", "&amp;&#65;", "<![CDATA[<x>]]>", "\u4f01", "<!-- c -->", "<?p?>"]
_texts = st.sampled_from(_VALID_TEXTS * 8 + ["&e;"])
_names = st.sampled_from(["Encrypt", "ToUserName", "AgentID", "Item", "a", "xml"] * 8 + ["n:a"])
_attributes = st.sampled_from(["", "", ' a="1"', ' xmlns:n="urn:n"', ' xmlns="urn:d"'])


@st.composite
def xml_elements(draw, depth: int) -> str:
    name = draw(_names)
    parts = [draw(_texts)]
    if depth < 4:
        for _ in range(draw(st.integers(0, 3))):
            parts.append(draw(xml_elements(depth + 1)))
            parts.append(draw(_texts))
    return f"<{name}{draw(_attributes)}>{''.join(parts)}</{name}>"


@st.composite
def xml_documents(draw) -> str:
    """Documents with the constructs the two parsers must agree on: mostly an <xml>
    root with an Encrypt, sometimes another root or refused content."""
    root = draw(st.sampled_from(["xml", "xml", "xml", "root"]))
    parts = [draw(_texts)]
    for _ in range(draw(st.integers(0, 5))):
        parts.append(draw(st.one_of(xml_elements(1), st.just("<Encrypt>e1</Encrypt>"))))
        parts.append(draw(_texts))
    return f"<{root}{draw(_attributes)}>{''.join(parts)}</{root}>"


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    doc=xml_documents(),
    prefix=st.sampled_from(["", '<?xml version="1.0"?>', "<!DOCTYPE xml>", " ", "<!-- x -->"]),
    suffix=st.sampled_from(["", " ", "<xml/>", "x", "<!-- y -->"]),
)
def test_generated_documents_parse_as_defusedxml_parses_them(doc, prefix, suffix):
    assert_parsers_agree(prefix + doc + suffix)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(st.binary(max_size=500), st.text(max_size=500)))
def test_arbitrary_input_parses_as_defusedxml_parses_it(data):
    assert_parsers_agree(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xml=callbacks())
def test_random_callbacks_parse_as_defusedxml_parses_them(xml):
    assert_parsers_agree(xml)
