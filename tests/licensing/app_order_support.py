"""Helpers for the paid-app tests: WeCom's truth, and the mirror compared with it."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from licensing.app_orders import editions
from licensing.app_orders import services
from licensing.app_orders import tasks
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TenantEdition
from tenants.models import Authorization

ORDER_FIELDS = (
    "order_type",
    "edition_id",
    "edition_name",
    "price",
    "user_count",
    "order_period",
    "order_from",
    "operator_id",
    "operator_corpid",
    "service_share_amount",
    "platform_share_amount",
    "dealer_share_amount",
    "dealer_corpid",
    "dealer_corp_name",
)
TIME_FIELDS = ("order_time", "paid_time", "begin_time", "end_time")
EDITION_FIELDS = (
    "edition_id",
    "edition_name",
    "app_status",
    "user_limit",
    "is_virtual_version",
    "is_shared_from_other_corp",
)


def truth_orders(ctl, suite_id: str | None = None) -> dict[str, dict]:
    """The simulator's app orders (WeCom's truth), by order id."""
    return {
        o["orderid"]: o
        for o in ctl.state()["app_orders"]
        if suite_id is None or o["suiteid"] == suite_id
    }


def truth_edition(sandbox, suite_id: str, corpid: str) -> dict:
    with sandbox.state.lock:
        return dict(sandbox.state.auth(suite_id, corpid).edition)


def _ts(value) -> int:
    return int(value.timestamp()) if value is not None else 0


def order_mismatches(row: AppOrder, truth: dict) -> list[str]:
    """Return the fields where the mirrored order differs from WeCom's (empty: equal)."""
    wrong = [] if row.status == truth["order_status"] else [f"status {row.status}"]
    wrong += [name for name in ORDER_FIELDS if getattr(row, name) != truth[name]]
    wrong += [name for name in TIME_FIELDS if _ts(getattr(row, name)) != truth[name]]
    return wrong


def edition_mismatches(row: TenantEdition, truth: dict) -> list[str]:
    wrong = [name for name in EDITION_FIELDS if getattr(row, name) != truth.get(name)]
    if _ts(row.expired_time) != truth.get("expired_time", 0):
        wrong.append("expired_time")
    return wrong


def poll_everything(*, ahead: timedelta = timedelta(days=800)) -> None:
    """Play beat + worker: adopt, claim everything due ``ahead`` of now, run each task.

    ``ahead`` covers the simulator's clock when a test moved it forward.
    """
    now = timezone.now() + ahead
    editions.editions_adopt()
    for pk in services.app_orders_claim_due(now=now):
        tasks.app_order_sync(pk)
    for pk in editions.editions_claim_due(now=now):
        tasks.edition_refresh(pk)


def tenant(suite, corpid: str) -> Authorization:
    return Authorization.objects.get(suite=suite, corp__corpid=corpid)
