"""External contacts (seed 004) and app messages, with a corp access_token.

- externalcontact/list, get, batch/get_by_user: the contacts directory.py mints per
  visible member (84061 when a member has none, 40096 for an unknown external_userid).
- externalcontact/add_contact_way: a "contact me" configuration (config_id, qr_code).
- externalcontact/send_welcome_msg: consumes a welcome_code (20 s, single use; 41050
  otherwise, §3). Codes come from ``POST /sandbox/welcome_code`` (the simulator's stand
  in for the add_external_contact event that carries one).
- message/send: checks agentid, splits valid and invalid recipients, records the
  message (``GET /sandbox/messages``); 81013 when no recipient is valid.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sandbox import directory
from sandbox.api import Call
from sandbox.api import _decode_cursor
from sandbox.api import _encode_cursor
from sandbox.api import objects
from sandbox.api import route
from sandbox.api import strings
from sandbox.api_auth import token_auth
from sandbox.control_api import ControlCall
from sandbox.control_api import control
from sandbox.credentials import CORP
from sandbox.errors import ApiError

BATCH_USERS_MAX = 100  # batch/get_by_user: userid_list ≤ 100, limit ≤ 100
STATE_RE = re.compile(r"[A-Za-z0-9_-]{0,30}")
MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown"}
)


def _contacts(call: Call):
    corp, auth = token_auth(call)
    return corp, auth, directory.externals(call.state.corp_data, corp, call.now())


def _member(corp, userid: str):
    user = corp.users.get(userid)
    if user is None:
        raise ApiError(60111, f"userid {userid} not found")
    if not user.visible:
        raise ApiError(60011, f"{userid} is outside the app's visible range")
    return user


@route("externalcontact/list", "/cgi-bin/externalcontact/list", method="GET", token=CORP)
def externalcontact_list(call: Call) -> dict[str, Any]:
    userid = call.text("userid", source=call.query)
    corp, _, contacts = _contacts(call)
    _member(corp, userid)
    mine = directory.followed_by(contacts, userid)
    if not mine:
        raise ApiError(84061, "this member has no external contact")
    return {"external_userid": [c.external_userid for c in mine]}


@route("externalcontact/get", "/cgi-bin/externalcontact/get", method="GET", token=CORP)
def externalcontact_get(call: Call) -> dict[str, Any]:
    external_userid = call.text("external_userid", source=call.query)
    _, _, contacts = _contacts(call)
    contact = contacts.get(external_userid)
    if contact is None:
        raise ApiError(40096, "invalid external_userid")
    return {
        "external_contact": contact.contact(),
        "follow_user": [dict(f) for f in contact.follow],
        "next_cursor": "",
    }


@route(
    "externalcontact/batch/get_by_user", "/cgi-bin/externalcontact/batch/get_by_user", token=CORP
)
def externalcontact_batch_get_by_user(call: Call) -> dict[str, Any]:
    userids = strings(
        call.items("userid_list", max_items=BATCH_USERS_MAX), "userid_list"
    )  # 40058 for more than 100
    limit = call.integer("limit", required=False, default=50)
    if not 1 <= limit <= BATCH_USERS_MAX:
        raise ApiError(40058, f"limit must be 1..{BATCH_USERS_MAX}")
    cursor = call.text("cursor", required=False)
    corp, _, contacts = _contacts(call)
    for userid in userids:
        _member(corp, userid)
    rows = [
        {"external_contact": c.contact(), "follow_info": _follow_info(f)}
        for userid in userids
        for c in directory.followed_by(contacts, userid)
        for f in c.follow
        if f["userid"] == userid
    ]
    start = _decode_cursor("by_user", cursor) if cursor else 0
    more = start + limit < len(rows)
    return {
        "external_contact_list": rows[start : start + limit],
        "next_cursor": _encode_cursor("by_user", start + limit) if more else "",
        "fail_info": {"unlicensed_userid_list": []},
    }


def _follow_info(follow: dict[str, Any]) -> dict[str, Any]:
    info = {k: v for k, v in follow.items() if k != "tags"}
    info["tag_id"] = [t.get("tag_id") for t in follow.get("tags", [])]
    return info


@route("externalcontact/add_contact_way", "/cgi-bin/externalcontact/add_contact_way", token=CORP)
def externalcontact_add_contact_way(call: Call) -> dict[str, Any]:
    way_type = call.integer("type")
    scene = call.integer("scene")
    if way_type not in (1, 2) or scene not in (1, 2):
        raise ApiError(40058, "type and scene are 1 or 2")
    state_param = call.text("state", required=False)
    if not STATE_RE.fullmatch(state_param):
        raise ApiError(40058, "state is at most 30 characters")
    users = strings(call.items("user", required=False), "user")
    parties = call.items("party", required=False)
    if way_type == 1 and (len(users) != 1 or parties):
        raise ApiError(40058, "a single-member way (type 1) names exactly one user")
    if not users and not parties:
        raise ApiError(40063, "user or party missing")
    corp, _ = token_auth(call)
    for userid in users:
        _member(corp, userid)
    config_id = secrets.token_hex(16)
    call.state.corp_data.contact_ways[config_id] = {
        "corpid": corp.corpid,
        "type": way_type,
        "scene": scene,
        "state": state_param,
        "user": users,
        "party": parties,
    }
    answer: dict[str, Any] = {"config_id": config_id}
    if scene == 2:
        answer["qr_code"] = f"https://wework.qpic.cn/wwpic/{config_id}/0"
    return answer


@route("externalcontact/send_welcome_msg", "/cgi-bin/externalcontact/send_welcome_msg", token=CORP)
def externalcontact_send_welcome_msg(call: Call) -> dict[str, Any]:
    code = call.text("welcome_code")
    text = call.obj("text", required=False)
    attachments = objects(call.items("attachments", required=False, max_items=9), "attachments")
    if not text.get("content") and not attachments:
        raise ApiError(40063, "text.content or attachments missing")
    corp, _ = token_auth(call)
    welcome = call.state.corp_data.welcome_codes.get(code)
    if (
        welcome is None
        or welcome.corpid != corp.corpid
        or welcome.used
        or welcome.expires_at <= call.now()
    ):
        raise ApiError(41050, "welcome_code unknown, used or expired (20 s)")
    welcome.used = True
    call.state.corp_data.messages.append(
        {"kind": "welcome", "corpid": corp.corpid, "external_userid": welcome.external_userid}
    )
    return {}


@route("message/send", "/cgi-bin/message/send", token=CORP)
def message_send(call: Call) -> dict[str, Any]:
    msgtype = call.text("msgtype")
    if msgtype not in MSGTYPES:
        raise ApiError(40008, f"invalid message type {msgtype}")
    agentid = call.integer("agentid")
    if not call.body.get(msgtype):
        raise ApiError(40063, f"{msgtype} missing")
    corp, auth = token_auth(call)
    if agentid != auth.agentid:
        raise ApiError(40056, "the agentid is not this app's")
    touser = [u for u in call.text("touser", required=False).split("|") if u]
    if not touser and not call.body.get("toparty") and not call.body.get("totag"):
        raise ApiError(40063, "touser, toparty or totag missing")
    everyone = touser == ["@all"]
    valid = [u for u in touser if u in corp.users and corp.users[u].visible]
    invalid = [u for u in touser if u not in valid] if not everyone else []
    if not valid and not everyone and not call.body.get("toparty") and not call.body.get("totag"):
        raise ApiError(81013, "no recipient is valid or visible to the app")
    msgid = secrets.token_urlsafe(24)
    call.state.corp_data.messages.append(
        {
            "kind": "app",
            "corpid": corp.corpid,
            "agentid": agentid,
            "msgtype": msgtype,
            "touser": ["@all"] if everyone else valid,
            "msgid": msgid,
        }
    )
    return {
        "invaliduser": "|".join(invalid),
        "invalidparty": "",
        "invalidtag": "",
        "unlicenseduser": "",
        "msgid": msgid,
    }


# ----- control -------------------------------------------------------------------------


@control("POST", "/sandbox/welcome_code")
def welcome_code(call: ControlCall):
    """Mint a welcome_code for (corpid, userid, external_userid), as the add event would."""
    state = call.state
    corp = state.corp(call.need("corpid"))
    if corp is None:
        raise ApiError(40013, "unknown corpid")
    userid = call.need("userid")
    contacts = directory.externals(state.corp_data, corp, state.now())
    external_userid = call.get("external_userid", kind=str) or next(
        (c.external_userid for c in directory.followed_by(contacts, userid)), ""
    )
    code = directory.WelcomeCode(
        code=secrets.token_urlsafe(32),
        corpid=corp.corpid,
        userid=userid,
        external_userid=external_userid,
        expires_at=state.now() + directory.WELCOME_CODE_TTL,
    )
    state.corp_data.welcome_codes[code.code] = code
    return {"welcome_code": code.code, "external_userid": external_userid}


@control("GET", "/sandbox/messages")
def list_messages(call: ControlCall):
    return {"messages": list(call.state.corp_data.messages)}
