"""Callback payloads: the plaintext XML WeCom encrypts into `Encrypt` (§8).

Strings go in CDATA, numbers bare, nested lists of pairs become child elements,
exactly like WeCom's own samples. Built by hand rather than with ElementTree so
the element order and CDATA wrapping match WeCom byte for byte.
"""

from __future__ import annotations

from typing import Any

Fields = list[tuple[str, Any]]


def _cdata(text: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two.
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _render(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        body = str(value)
    elif isinstance(value, list):
        body = "".join(_render(k, v) for k, v in value)
    else:
        body = _cdata(str(value))
    return f"<{name}>{body}</{name}>"


def xml(fields: Fields) -> str:
    """Return <xml>…</xml> with one element per (name, value); None values are left out."""
    return "<xml>" + "".join(_render(k, v) for k, v in fields) + "</xml>"


def envelope(to_user: str, agent_id: str, encrypt: str) -> str:
    """Return the POST body around an encrypted payload (§7.2)."""
    return xml([("ToUserName", to_user), ("AgentID", agent_id), ("Encrypt", encrypt)])


# ----- command URL (§8.1, §8.2) ------------------------------------------------------


def suite_ticket(suite_id: str, ticket: str, ts: int) -> str:
    return xml(
        [
            ("SuiteId", suite_id),
            ("InfoType", "suite_ticket"),
            ("TimeStamp", ts),
            ("SuiteTicket", ticket),
        ]
    )


def create_auth(suite_id: str, auth_code: str, state: str, ts: int) -> str:
    return xml(
        [
            ("SuiteId", suite_id),
            ("AuthCode", auth_code),
            ("InfoType", "create_auth"),
            ("TimeStamp", ts),
            ("State", state),
            ("ExtraInfo", ""),
        ]
    )


def change_auth(suite_id: str, corpid: str, state: str, ts: int) -> str:
    return xml(
        [
            ("SuiteId", suite_id),
            ("InfoType", "change_auth"),
            ("TimeStamp", ts),
            ("AuthCorpId", corpid),
            ("State", state),
            ("ExtraInfo", ""),
        ]
    )


def cancel_auth(suite_id: str, corpid: str, ts: int) -> str:
    return xml(
        [
            ("SuiteId", suite_id),
            ("InfoType", "cancel_auth"),
            ("TimeStamp", ts),
            ("AuthCorpId", corpid),
        ]
    )


def change_editon(suite_id: str, corpid: str, ts: int) -> str:
    """应用版本付费: the corp's edition changed (InfoType spelled as WeCom does, §8.1)."""
    return xml(
        [
            ("SuiteId", suite_id),
            ("PaidCorpId", corpid),
            ("InfoType", "change_editon"),
            ("TimeStamp", ts),
        ]
    )


def reset_permanent_code(suite_id: str, auth_code: str, ts: int) -> str:
    return xml(
        [
            ("SuiteId", suite_id),
            ("AuthCode", auth_code),
            ("InfoType", "reset_permanent_code"),
            ("TimeStamp", ts),
        ]
    )


def change_contact(
    suite_id: str, corpid: str, info_type: str, change_type: str, extra: Fields, ts: int
) -> str:
    """Third-party contact/customer events on the command URL (§8.2)."""
    return xml(
        [
            ("SuiteId", suite_id),
            ("AuthCorpId", corpid),
            ("InfoType", info_type),
            ("TimeStamp", ts),
            ("ChangeType", change_type),
            *extra,
        ]
    )


# ----- data URL (§8.4) ---------------------------------------------------------------


def data_event(
    corpid: str, from_user: str, event: str, agentid: int, ts: int, extra: Fields = ()
) -> str:
    return xml(
        [
            ("ToUserName", corpid),
            ("FromUserName", from_user),
            ("CreateTime", ts),
            ("MsgType", "event"),
            ("Event", event),
            *extra,
            ("AgentID", agentid),
        ]
    )


# ----- system URL (§8.3) -------------------------------------------------------------


def license_pay_success(provider: str, corpid: str, order_id: str, buyer: str, ts: int) -> str:
    return xml(
        [
            ("ServiceCorpId", provider),
            ("InfoType", "license_pay_success"),
            ("AuthCorpId", corpid),
            ("OrderId", order_id),
            ("BuyerUserId", buyer),
            ("TimeStamp", ts),
        ]
    )


def license_refund(provider: str, corpid: str, order_id: str, status: int, ts: int) -> str:
    return xml(
        [
            ("ServiceCorpId", provider),
            ("InfoType", "license_refund"),
            ("AuthCorpId", corpid),
            ("OrderId", order_id),
            ("OrderStatus", status),
            ("TimeStamp", ts),
        ]
    )


def auto_activate(provider: str, corpid: str, scene: int, accounts: list[Fields], ts: int) -> str:
    return xml(
        [
            ("ServiceCorpId", provider),
            ("InfoType", "auto_activate"),
            ("AuthCorpId", corpid),
            ("Scene", scene),
            ("TimeStamp", ts),
            *[("AccountList", account) for account in accounts],
        ]
    )
