"""Things that happen on WeCom's side without an API call from the provider.

Installs, de-authorizations, secret resets, dissolved corps, contact changes: the
control API calls these to play the corp admin or WeCom itself. Each mutates state
and enqueues the callback WeCom would push (§4, §8, §11 items 9–10). Call with the
state lock held.
"""

from __future__ import annotations

from typing import Any

from sandbox import credentials
from sandbox import ids
from sandbox import messages
from sandbox.config import build_user
from sandbox.models import AuthCode
from sandbox.models import Authorization
from sandbox.models import SuiteTicket
from sandbox.models import akey
from sandbox.pushes import COMMAND
from sandbox.pushes import DATA
from sandbox.pushes import push


class ActionError(ValueError):
    """A control action that cannot be done (unknown suite, corp not installed …)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def require_suite(state, suite_id: str | None):
    suite = state.suite(suite_id)
    if suite is None:
        raise ActionError(f"unknown suite {suite_id!r}", 404)
    return suite


def require_corp(state, corpid: str | None):
    corp = state.corp(corpid)
    if corp is None:
        raise ActionError(f"unknown corp {corpid!r}", 404)
    return corp


def require_auth(state, suite_id: str, corpid: str, *, active: bool = True) -> Authorization:
    auth = state.auth(suite_id, corpid)
    if auth is None or (active and not auth.active):
        raise ActionError(f"{corpid} has no active authorization of {suite_id}", 409)
    return auth


def push_ticket(state, suite_id: str) -> SuiteTicket:
    """Issue a new suite_ticket and push it to the suite's command URL (§11 item 5)."""
    ticket = credentials.issue_ticket(state, suite_id)
    push(
        state,
        channel=COMMAND,
        info_type="suite_ticket",
        suite_id=suite_id,
        payload=messages.suite_ticket(suite_id, ticket.ticket, state.ts()),
    )
    return ticket


def authorize(
    state, suite_id: str, corpid: str, *, state_param: str = "", test: bool = False
) -> Authorization:
    """Return the corp's active authorization of the suite, creating it if needed.

    A re-install while authorized keeps the permanent code (WeCom would not let the admin
    install twice); after a cancel it is a new authorization with a new code and agent.
    The trial clock starts at the first install and is never reset (§3).
    """
    suite = require_suite(state, suite_id)
    corp = require_corp(state, corpid)
    existing = state.auth(suite_id, corp.corpid)
    if existing is not None and existing.active:
        existing.state = state_param or existing.state
        return existing
    admins = [u.userid for u in corp.users.values() if u.admin]
    previous = existing
    auth = Authorization(
        suite_id=suite_id,
        corpid=corp.corpid,
        permanent_code=ids.opaque(64),
        agentid=state.next_agentid,
        level=0 if suite.customized else 1,
        app_permissions=list(suite.app_permissions),
        state=state_param,
        installer=admins[0] if admins else next(iter(corp.users), ""),
        test=test,
        customized=suite.customized,
        created_at=state.now(),
        generation=(previous.generation + 1) if previous is not None else 1,
        # The permanent codes of earlier installs stay dead: 40084 (get_corp_token,
        # get_auth_info) or 40001 (gettoken) for them, never the new install's data.
        retired_codes=[
            *(previous.retired_codes if previous else []),
            *([previous.permanent_code] if previous else []),
        ],
        edition=_first_edition(state, suite),
    )
    state.next_agentid += 1
    state.auths[akey(suite_id, corp.corpid)] = auth
    state.trials.setdefault(akey(suite_id, corp.corpid), state.now())
    return auth


def _first_edition(state, suite) -> dict[str, Any]:
    """A new install's edition: the suite's first, on trial (app_status 1) [sim]."""
    if not suite.editions:
        return {}
    first = suite.editions[0]
    return {
        "edition_id": first["edition_id"],
        "edition_name": first.get("edition_name", first["edition_id"]),
        "app_status": 1,  # 限时试用
        "user_limit": int(first.get("user_limit", 200)),
        "expired_time": int(state.now()) + 15 * 86400,
        "is_virtual_version": False,
        "is_shared_from_other_corp": False,
    }


def issue_auth_code(
    state, auth: Authorization, *, purpose: str = "install", permanent_code: str | None = None
) -> AuthCode:
    """Mint a single-use auth_code (600 s) that the exchange turns into a permanent code.

    A new reset code voids the unexchanged reset codes before it: the newest click on
    重新获取secret is the one that counts [sim].
    """
    if purpose == "reset":
        for other in state.auth_codes.values():
            if (
                other.purpose == "reset"
                and not other.used
                and (other.suite_id, other.corpid) == (auth.suite_id, auth.corpid)
            ):
                other.void = True
    code = AuthCode(
        code=ids.opaque(96),
        suite_id=auth.suite_id,
        corpid=auth.corpid,
        expires_at=state.now() + state.settings.auth_code_ttl,
        purpose=purpose,
        state=auth.state,
        permanent_code=permanent_code or auth.permanent_code,
        generation=auth.generation,
    )
    state.auth_codes[code.code] = code
    return code


def install(
    state,
    suite_id: str,
    corpid: str,
    *,
    state_param: str = "",
    test: bool = False,
    push_event: bool = True,
) -> AuthCode:
    """Marketplace / QR / console / 代开发 install: authorize and push create_auth (§4.2)."""
    auth = authorize(state, suite_id, corpid, state_param=state_param, test=test)
    code = issue_auth_code(state, auth)
    if push_event:
        push(
            state,
            channel=COMMAND,
            info_type="create_auth",
            suite_id=suite_id,
            corpid=auth.corpid,
            payload=messages.create_auth(suite_id, code.code, state_param, state.ts()),
        )
    return code


def cancel_auth(state, suite_id: str, corpid: str, *, push_event: bool = True) -> Authorization:
    """The corp removes the app: the permanent code dies (40084) and corp tokens go too."""
    corp = require_corp(state, corpid)
    auth = require_auth(state, suite_id, corp.corpid)
    auth.status = "cancelled"
    auth.cancelled_at = state.now()
    credentials.revoke_tokens(state, kind=credentials.CORP, suite_id=suite_id, corpid=corp.corpid)
    if push_event:
        push(
            state,
            channel=COMMAND,
            info_type="cancel_auth",
            suite_id=suite_id,
            corpid=corp.corpid,
            payload=messages.cancel_auth(suite_id, corp.corpid, state.ts()),
        )
    return auth


# Fields of an authorization change_auth may alter (visible range, mode, permissions).
CHANGEABLE = {
    "allow_party": list,
    "allow_user": list,
    "allow_tag": list,
    "auth_mode": int,
    "level": int,
    "app_permissions": list,
    "state": str,
}


def change_auth(state, suite_id: str, corpid: str, changes: dict[str, Any]) -> Authorization:
    """Apply `changes` to the authorization and push change_auth (§4.5)."""
    corp = require_corp(state, corpid)
    auth = require_auth(state, suite_id, corp.corpid)
    for name, value in changes.items():
        kind = CHANGEABLE.get(name)
        if kind is None or not isinstance(value, kind):
            raise ActionError(f"change_auth cannot set {name!r} to {value!r}")
        setattr(auth, name, value)
    push(
        state,
        channel=COMMAND,
        info_type="change_auth",
        suite_id=suite_id,
        corpid=corp.corpid,
        payload=messages.change_auth(suite_id, corp.corpid, auth.state, state.ts()),
    )
    return auth


def reset_permanent_code(state, suite_id: str, corpid: str) -> AuthCode:
    """The corp admin clicks 重新获取secret: push reset_permanent_code with a new AuthCode.

    The old secret keeps working until the new code is exchanged; from then on gettoken
    with the old secret answers 40001 (§11 item 10).
    """
    suite = require_suite(state, suite_id)
    if not suite.customized:
        raise ActionError("reset_permanent_code exists only for 代开发 templates")
    corp = require_corp(state, corpid)
    auth = require_auth(state, suite_id, corp.corpid)
    code = issue_auth_code(state, auth, purpose="reset", permanent_code=ids.opaque(64))
    push(
        state,
        channel=COMMAND,
        info_type="reset_permanent_code",
        suite_id=suite_id,
        corpid=corp.corpid,
        payload=messages.reset_permanent_code(suite_id, code.code, state.ts()),
    )
    return code


def dissolve_corp(
    state, corpid: str, *, errcode: int | None = None, cancel_after: float | None = None
) -> None:
    """The corp is dissolved or banned: corp tokens fail with 301007/2000002 (§4.5).

    cancel_auth follows only if cancel_after (simulator seconds) is given; WeCom sends
    it about 15 days later, so by default it never comes within a test.
    """
    corp = require_corp(state, corpid)
    corp.dissolved = errcode or state.settings.dissolve_errcode
    credentials.revoke_tokens(state, kind=credentials.CORP, corpid=corp.corpid)
    if cancel_after is not None and state.scheduler is not None:
        for auth in state.active_auths(corp.corpid):
            state.scheduler.at(
                state.now() + cancel_after,
                lambda a=auth: a.active and cancel_auth(state, a.suite_id, a.corpid),
            )


# ----- 应用版本付费 and activity -----------------------------------------------------------

EDITION_FIELDS = {
    "edition_id": str,
    "edition_name": str,
    "app_status": int,
    "user_limit": int,
    "expired_time": int,
}


def change_edition(state, suite_id: str, corpid: str, changes: dict[str, Any]) -> Authorization:
    """Change the corp's paid edition and push change_editon (sic) to the command URL.

    Only suites with editions have one (§5.2): the others answer 409 here, as WeCom
    would never send the event.
    """
    suite = require_suite(state, suite_id)
    corp = require_corp(state, corpid)
    auth = require_auth(state, suite_id, corp.corpid)
    if not suite.editions:
        raise ActionError(f"{suite_id} has no paid editions", 409)
    edition = dict(auth.edition)
    for name, value in changes.items():
        kind = EDITION_FIELDS.get(name)
        if kind is None or not isinstance(value, kind) or isinstance(value, bool):
            raise ActionError(f"change_edition cannot set {name!r} to {value!r}")
        edition[name] = value
    if "edition_id" in changes and "edition_name" not in changes:
        known = {e["edition_id"]: e for e in suite.editions}
        if changes["edition_id"] not in known:
            raise ActionError(f"{suite_id} has no edition {changes['edition_id']!r}")
        edition["edition_name"] = known[changes["edition_id"]].get(
            "edition_name", changes["edition_id"]
        )
    auth.edition = edition
    push(
        state,
        channel=COMMAND,
        info_type="change_editon",
        suite_id=suite_id,
        corpid=corp.corpid,
        payload=messages.change_editon(suite_id, corp.corpid, state.ts()),
    )
    return auth


# Activity events → (Authorization attribute, its value afterwards) (path/90240).
ACTIVITY = {
    "low_active_alert": ("activity", "low_active_alert"),
    "low_active": ("activity", "low_active"),
    "active_restored": ("activity", "normal"),
    "inactive_alert": ("agent_state", "inactive_alert"),
    "close_inactive_agent": ("agent_state", "closed"),
    "reopen_inactive_agent": ("agent_state", "open"),
}


def app_activity(
    state, suite_id: str, corpid: str, event: str, *, effect_time: int | None = None
) -> Authorization:
    """WeCom judges the app's activity in the corp: record it and push the data-URL event.

    The alerts carry EffectTime (default: 30 days from now), when the restriction starts.
    """
    if event not in ACTIVITY:
        raise ActionError(f"event must be one of {sorted(ACTIVITY)}")
    corp = require_corp(state, corpid)
    auth = require_auth(state, suite_id, corp.corpid)
    attribute, value = ACTIVITY[event]
    setattr(auth, attribute, value)
    extra: list[tuple[str, Any]] = []
    if event.endswith("_alert"):
        extra.append(("EffectTime", effect_time or state.ts() + 30 * 86400))
    push(
        state,
        channel=DATA,
        info_type=event,
        suite_id=suite_id,
        corpid=corp.corpid,
        agentid=auth.agentid,
        payload=messages.data_event(corp.corpid, "sys", event, auth.agentid, state.ts(), extra),
    )
    return auth


# ----- contact events ----------------------------------------------------------------

# Control-API field names -> the XML element of the change_contact event (§8.2).
_USER_FIELDS = {
    "name": "Name",
    "department": "Department",
    "mobile": "Mobile",
    "position": "Position",
    "gender": "Gender",
    "email": "Email",
    "status": "Status",
    "avatar": "Avatar",
}


def _user_xml(user, changed: dict[str, Any] | None = None) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [("UserID", user.userid), ("OpenUserID", user.open_userid)]
    source = changed if changed is not None else {k: getattr(user, k) for k in _USER_FIELDS}
    for name, element in _USER_FIELDS.items():
        if name not in source:
            continue
        value = source[name]
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)  # comma-separated strings (§8 Parsing)
        fields.append((element, value))
    if changed is None:
        fields.append(("MainDepartment", user.department[0] if user.department else 1))
    return fields


def contact_event(
    state,
    *,
    suite_id: str | None,
    corpid: str,
    change_type: str,
    info_type: str = "change_contact",
    data: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Change the corp's contacts and tell every authorized suite (or just `suite_id`).

    User changes are applied to the corp fixture first, so later API answers agree with
    the event. Third-party suites get the InfoType shape on the command URL; 代开发
    templates get the self-built shape (MsgType=event) on the data URL (§7.1).
    """
    corp = require_corp(state, corpid)
    data = dict(data or {})
    extra = _apply_contact_change(corp, info_type, change_type, data)
    auths = state.active_auths(corp.corpid)
    if suite_id:
        auths = [a for a in auths if a.suite_id == suite_id]
        if not auths:
            raise ActionError(f"{corp.corpid} has no active authorization of {suite_id}", 409)
    sent = []
    for auth in auths:
        if auth.customized:
            payload = messages.data_event(
                corp.corpid,
                "sys",
                info_type,
                auth.agentid,
                state.ts(),
                [("ChangeType", change_type), *extra],
            )
            record = push(
                state,
                channel=DATA,
                info_type=info_type,
                change_type=change_type,
                suite_id=auth.suite_id,
                corpid=corp.corpid,
                agentid=auth.agentid,
                payload=payload,
            )
        else:
            payload = messages.change_contact(
                auth.suite_id, corp.corpid, info_type, change_type, extra, state.ts()
            )
            record = push(
                state,
                channel=COMMAND,
                info_type=info_type,
                change_type=change_type,
                suite_id=auth.suite_id,
                corpid=corp.corpid,
                payload=payload,
            )
        sent.append({"push_id": record.id, "suite_id": auth.suite_id})
    return sent


def _apply_contact_change(corp, info_type: str, change_type: str, data: dict[str, Any]):
    """Mutate the corp fixture for user events; return the event's extra XML fields."""
    if info_type != "change_contact":
        # change_external_contact etc.: pass the given fields through as elements.
        return list(data.items())
    if change_type == "create_user":
        user = build_user(data)
        corp.users[user.userid] = user
        return _user_xml(user)
    if change_type in ("update_user", "delete_user"):
        user = corp.users.get(data.get("userid", ""))
        if user is None:
            raise ActionError(f"unknown user {data.get('userid')!r} in {corp.corpid}", 404)
        if change_type == "delete_user":
            del corp.users[user.userid]
            return [("UserID", user.userid), ("OpenUserID", user.open_userid)]
        changed = {k: v for k, v in data.items() if k in _USER_FIELDS}
        for name, value in changed.items():
            setattr(user, name, value)
        fields = _user_xml(user, changed)
        if data.get("new_userid"):
            # A rename re-keys the member (§8.2 NewUserID).
            del corp.users[user.userid]
            user.userid = data["new_userid"]
            corp.users[user.userid] = user
            fields.insert(2, ("NewUserID", user.userid))
        return fields
    # Party and tag events: the caller's fields, CamelCase names (Id, Name, ParentId …).
    return [(k, ",".join(map(str, v)) if isinstance(v, list) else v) for k, v in data.items()]


def change_app_admin(state, suite_id: str, corpid: str, admins: list[str] | None) -> int:
    """Change which users are admins and push change_app_admin on the data URL (§8.4)."""
    corp = require_corp(state, corpid)
    auth = require_auth(state, suite_id, corp.corpid)
    if admins is not None:
        for user in corp.users.values():
            user.admin = user.userid in admins
    record = push(
        state,
        channel=DATA,
        info_type="change_app_admin",
        suite_id=suite_id,
        corpid=corp.corpid,
        agentid=auth.agentid,
        payload=messages.data_event(
            corp.corpid, "sys", "change_app_admin", auth.agentid, state.ts()
        ),
    )
    return record.id
