"""Accounts (active codes) in use: activation, merging, transfer, sharing, and the
unlicensed-member hook that auto-activates or pushes unlicensed_notify (§6.4, §11 item 16)."""

from __future__ import annotations

from typing import Any

from sandbox import messages
from sandbox.errors import ApiError
from sandbox.licensing import ACCOUNT_CAP
from sandbox.licensing import ACCOUNT_TYPES
from sandbox.licensing import ACTIVATION_WINDOW
from sandbox.licensing import AUTO_RENEW_WINDOW
from sandbox.licensing import DAY
from sandbox.licensing import MERGE_THRESHOLD
from sandbox.licensing import TRANSFER_COOLDOWN
from sandbox.licensing import corp_codes
from sandbox.licensing import refresh_code
from sandbox.licensing import user_codes
from sandbox.licensing import valid_code
from sandbox.models import BASE
from sandbox.models import CODE_BOUND
from sandbox.models import CODE_MERGED
from sandbox.models import CODE_SHARED
from sandbox.models import CODE_UNBOUND
from sandbox.models import ActiveCode
from sandbox.models import Corp
from sandbox.models import ckey
from sandbox.pushes import DATA
from sandbox.pushes import SYSTEM
from sandbox.pushes import push

# ----- activation --------------------------------------------------------------------


def _merge_into(state, new: ActiveCode, old: ActiveCode | None, userid: str) -> None:
    """Bind `new` to userid; a still-valid old code of that type is merged into it."""
    now = state.ts()
    remaining = max(0, old.expire_time - now) if old else 0
    new.status = CODE_BOUND
    new.userid = userid
    new.active_time = now
    new.expire_time = now + new.duration_days * DAY + remaining
    if old is not None:
        old.status = CODE_MERGED
        old.merge_to = new.active_code
        old.expire_time = now  # a merged, unexpired code is reset to the merge time
        new.merge_from = old.active_code


def _check_merge(state, new_days: int, old: ActiveCode | None, *, limit: int) -> int:
    """Return 0 if a code of new_days may replace old, else the errcode."""
    if old is None:
        return 0
    remaining = old.expire_time - state.ts()
    if remaining > limit:
        return 701082
    if new_days * DAY + remaining > ACCOUNT_CAP:
        return 701030
    return 0


def activate_one(state, corp: Corp, active_code: str, userid: str) -> int:
    """Bind active_code to userid; return 0 or the errcode (§6.4 Activation)."""
    code = state.codes.get(ckey(corp.corpid, active_code))
    if code is None or code.void:
        return 701021
    refresh_code(state, code)
    if code.status != CODE_UNBOUND:
        return 701003
    user = corp.users.get(userid)
    if user is None or user.status == 5:
        return 701019
    if not user.visible:
        return 701088
    if state.now() > code.create_time + ACTIVATION_WINDOW:
        return 701012
    old = valid_code(state, corp.corpid, userid, code.type)
    err = _check_merge(state, code.duration_days, old, limit=MERGE_THRESHOLD)
    if err:
        return err
    _merge_into(state, code, old, userid)
    return 0


def pick_unbound(state, corp: Corp, type_: int) -> ActiveCode | None:
    """Return the unbound code of that type with the earliest activation deadline."""
    now = state.now()
    candidates = [
        c
        for c in corp_codes(state, corp.corpid)
        if c.type == type_
        and c.status == CODE_UNBOUND
        and not c.void
        and now <= c.create_time + ACTIVATION_WINDOW
    ]
    return min(
        candidates, key=lambda c: (c.create_time + ACTIVATION_WINDOW, c.active_code), default=None
    )


def activate_by_type(state, corp: Corp, type_: int, userid: str) -> ActiveCode:
    if type_ not in ACCOUNT_TYPES:
        raise ApiError(701006, "type must be 1 or 2")
    user = corp.users.get(userid)
    if user is None or user.status == 5:
        raise ApiError(701019, "userid is not a member of the corp")
    if valid_code(state, corp.corpid, userid, type_):
        raise ApiError(701011, "the user already holds a valid account of this type")
    code = pick_unbound(state, corp, type_)
    if code is None:
        raise ApiError(701072, "no unbound account of this type")
    err = activate_one(state, corp, code.active_code, userid)
    if err:
        raise ApiError(err)
    return code


def transfer_one(state, corp: Corp, handover: str, takeover: str, moved: set[str]) -> int:
    """Move the handover user's valid accounts to takeover; return 0 or the errcode."""
    if handover in moved:
        return 701023  # the same handover user twice in one call
    giver = corp.users.get(handover)
    taker = corp.users.get(takeover)
    if taker is None or taker.status == 5 or handover == takeover:
        return 701019
    codes = [valid_code(state, corp.corpid, handover, t) for t in ACCOUNT_TYPES]
    codes = [c for c in codes if c is not None]
    if not codes:
        return 701016
    key = f"{corp.corpid}|{handover}"
    employed = giver is not None and giver.status != 5 and giver.visible
    last = state.last_transfer.get(key)
    if employed and last is not None and state.now() - last < TRANSFER_COOLDOWN:
        return 701017
    now = state.ts()
    olds = {c.type: valid_code(state, corp.corpid, takeover, c.type) for c in codes}
    for code in codes:
        old = olds[code.type]
        if old is None:
            continue
        if old.expire_time - now > MERGE_THRESHOLD:
            return 701018  # the takeover user's own account has >20 days left
        if (code.expire_time - now) + (old.expire_time - now) > ACCOUNT_CAP:
            return 701030
    for code in codes:
        old = olds[code.type]
        if old is not None:
            code.expire_time += max(0, old.expire_time - now)
            old.status = CODE_MERGED
            old.merge_to = code.active_code
            old.expire_time = now
            code.merge_from = old.active_code
        code.userid = takeover
    state.last_transfer[key] = state.now()
    moved.add(handover)
    return 0


def share_one(state, source: Corp, target: Corp, active_code: str, budget: list[int]) -> int:
    """Share one unbound code downstream; budget[0] is how many more the cap allows."""
    code = state.codes.get(ckey(source.corpid, active_code))
    if code is None or code.void:
        return 701021
    refresh_code(state, code)
    if code.status == CODE_SHARED:
        return 701055
    if code.share_from:
        return 701054  # it came from upstream: cannot be passed on
    if code.status != CODE_UNBOUND:
        return 701003
    if budget[0] <= 0:
        return 701056
    budget[0] -= 1
    code.status = CODE_SHARED
    code.share_to = target.corpid
    copy = ActiveCode(
        active_code=code.active_code,
        corpid=target.corpid,
        type=code.type,
        order_id=code.order_id,
        duration_days=code.duration_days,
        create_time=code.create_time,
        share_from=source.corpid,
    )
    state.codes[ckey(target.corpid, copy.active_code)] = copy
    return 0


def share_budget(state, target: Corp) -> int:
    """Return how many more codes target may receive: ≤2× its headcount in total (701056)."""
    shared = sum(1 for c in state.codes.values() if c.corpid == target.corpid and c.share_from)
    return 2 * len(target.users) - shared


# ----- unlicensed member hook (§11 item 16) ------------------------------------------


def unlicensed(state, corp: Corp, userid: str, suite_id: str | None = None) -> dict[str, Any]:
    """An unlicensed member opens the app: auto-activate if possible, else unlicensed_notify.

    Auto-activation (corp switch on) binds the earliest free basic code and pushes
    auto_activate on the system URL; a member whose account has ≤7 days left is renewed
    the same way (PreviousStatus 2, with PreviousActiveCode). Otherwise the member,
    if in the visible range, triggers unlicensed_notify on the app's data URL.
    """
    user = corp.users.get(userid)
    if user is None:
        raise ApiError(60111, "userid not found")
    current = valid_code(state, corp.corpid, userid, BASE)
    remaining = current.expire_time - state.ts() if current else 0
    if current and (not corp.auto_active or remaining > AUTO_RENEW_WINDOW):
        return {"action": "none", "reason": "the member holds a valid basic account"}
    if corp.auto_active:
        code = pick_unbound(state, corp, BASE)
        if code is not None and not _check_merge(
            state, code.duration_days, current, limit=AUTO_RENEW_WINDOW
        ):
            had_expired = any(c.type == BASE for c in user_codes(state, corp.corpid, userid))
            previous = 2 if current else (3 if had_expired else 1)
            _merge_into(state, code, current, userid)
            account = [
                ("ActiveCode", code.active_code),
                ("Type", BASE),
                ("ExpireTime", code.expire_time),
                ("UserId", userid),
                ("PreviousStatus", previous),
            ]
            if current:
                account.append(("PreviousActiveCode", current.active_code))
            record = push(
                state,
                channel=SYSTEM,
                info_type="auto_activate",
                corpid=corp.corpid,
                payload=messages.auto_activate(
                    state.provider.corpid, corp.corpid, 1, [account], state.ts()
                ),
            )
            return {
                "action": "auto_activate",
                "active_code": code.active_code,
                "push_id": record.id,
            }
    if not user.visible:
        return {"action": "none", "reason": "the member is outside the visible range"}
    auths = state.active_auths(corp.corpid)
    if suite_id:
        auths = [a for a in auths if a.suite_id == suite_id]
    if not auths:
        raise ApiError(48004, "the corp has no active authorization")
    auth = auths[0]
    record = push(
        state,
        channel=DATA,
        info_type="unlicensed_notify",
        suite_id=auth.suite_id,
        corpid=corp.corpid,
        agentid=auth.agentid,
        payload=messages.data_event(
            corp.corpid, userid, "unlicensed_notify", auth.agentid, state.ts()
        ),
    )
    return {"action": "unlicensed_notify", "suite_id": auth.suite_id, "push_id": record.id}
