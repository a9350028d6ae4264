"""Reactions to WeCom license callbacks: plain, idempotent functions of a parsed event.

The callbacks app stores and dispatches (it merges ``HANDLERS``); these decide.
Running one twice has the effect of running it once: order moves are conditional
UPDATEs that only go forward, feed entries are keyed by their cause, and
auto_activate / unlicensed_notify leave a receipt row.
"""

from __future__ import annotations

import logging

from licensing import services
from licensing.app_orders.handlers import HANDLERS as APP_ORDER_HANDLERS
from licensing.models import OrderStatus
from tenants.models import Authorization
from tenants.models import Corp
from tenants.models import Suite
from wecom import messages
from wecom.errors import WeComError

logger = logging.getLogger(__name__)

# license_refund's OrderStatus has its own numbering (§6.2): 1 refunded, 2 rejected.
REFUND_RESULT = {1: OrderStatus.REFUNDED, 2: OrderStatus.REFUND_REJECTED}


class MalformedLicenseEvent(Exception):
    """The event lacks what the handler needs (no corp, no member, unknown result)."""


def _corp(event: messages.Event) -> Corp:
    if not event.auth_corp_id:
        raise MalformedLicenseEvent(f"{event.info_type} without AuthCorpId")
    corp, _ = Corp.objects.get_or_create(corpid=event.auth_corp_id)
    return corp


def handle_license_pay_success(event: messages.LicensePaySuccess) -> str:
    order = services.license_order_event(
        order_id=event.order_id,
        status=OrderStatus.PAID,
        corpid=event.auth_corp_id,
        source="callback",
        buyer_userid=event.buyer_user_id,
        at=event.timestamp,
    )
    synced = "accounts synced" if order.accounts_synced_at else "accounts pending"
    return f"order {order.order_id} status {order.status}; {synced}"


def handle_license_refund(event: messages.LicenseRefund) -> str:
    status = REFUND_RESULT.get(event.order_status or 0)
    if status is None:
        raise MalformedLicenseEvent(f"license_refund with OrderStatus {event.order_status!r}")
    order = services.license_order_event(
        order_id=event.order_id,
        status=status,
        corpid=event.auth_corp_id,
        source="callback",
        at=event.timestamp,
    )
    return f"order {order.order_id} status {order.status}"


def handle_auto_activate(event: messages.AutoActivate) -> str:
    corp = _corp(event)
    accounts = [
        {
            "active_code": a.active_code,
            "type": a.type,
            "expire_time": a.expire_time,
            "userid": a.user_id,
            "previous_status": a.previous_status,
            "previous_active_code": a.previous_active_code,
        }
        for a in event.accounts
        if a.active_code
    ]
    rows = services.license_auto_activated(
        corp=corp, accounts=accounts, scene=event.scene, at=event.timestamp
    )
    codes = [r.active_code for r in rows]
    # The callback lacks create_time and the order; a re-read fills them in. Best
    # effort: the accounts are already bound in the mirror, the reconciler completes.
    try:
        services.license_accounts_refresh(corp=corp, active_codes=codes)
    except (WeComError, services.LicenseError) as exc:
        logger.info("auto_activate re-read for %s failed: %s", corp.corpid, type(exc).__name__)
    return f"{len(rows)} account(s) auto-activated in {corp.corpid}"


def _suite_of(event: messages.UnlicensedNotify, corp: Corp) -> Suite | None:
    """Return the app the member opened: SuiteId, else the agent's, else the only one."""
    if event.suite_id:
        suite = Suite.objects.filter(suite_id=event.suite_id).first()
        if suite is not None:
            return suite
    authorizations = Authorization.objects.filter(corp=corp).select_related("suite")
    if event.agent_id and event.agent_id.isdigit():
        match = authorizations.filter(agent_id=int(event.agent_id)).first()
        if match is not None:
            return match.suite
    active = [a for a in authorizations if a.is_active]
    return active[0].suite if len(active) == 1 else None


def handle_unlicensed_notify(event: messages.UnlicensedNotify) -> str:
    corp = _corp(event)
    userid = event.from_user_name
    if not userid or userid == "sys":
        raise MalformedLicenseEvent("unlicensed_notify without a member (FromUserName)")
    member = services.license_unlicensed_record(
        corp=corp, userid=userid, suite=_suite_of(event, corp), at=event.timestamp
    )
    if member is None:
        return "duplicate: already recorded"
    return f"unlicensed member {userid} in {corp.corpid} (seen {member.times_seen}×)"


HANDLERS = {
    "license_pay_success": handle_license_pay_success,
    "license_refund": handle_license_refund,
    "auto_activate": handle_auto_activate,
    "unlicensed_notify": handle_unlicensed_notify,
    # Paid apps (应用版本付费): the five order events and change_editon (app_orders/).
    **APP_ORDER_HANDLERS,
}
