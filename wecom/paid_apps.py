"""Paid apps (应用版本付费): the order and trial APIs, their callbacks, edition_info.

Protocol doc §13. Three suite-token APIs, kept out of ``client.py`` as their own
endpoint group (``PaidAppApi`` is a ``SuiteApi`` with three more typed methods):

- ``service/get_order`` (path/91909): one order, every field at the top level;
- ``service/get_order_list`` (path/91910): the orders placed in a time window (the same
  fields per item); no cursor is documented, so the caller keeps windows small;
- ``service/prolong_try`` (path/91913): extend a trial, answers ``try_end_time``.

Answers are parsed into frozen dataclasses (``AppOrderInfo``, ``EditionInfo``); a field
WeCom leaves out is ``None``/empty, never invented. Callback payloads of the six
应用版本付费 events are read from a parsed event's ``raw`` dict (``AppOrderEvent``), so
``messages.py`` needs no change. Like the rest of the library: no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from enum import IntEnum
from typing import Any

from wecom.errors import WeComTransportError
from wecom.facade import JSON
from wecom.facade import uses
from wecom.suite import SuiteApi

__all__ = [
    "APP_ORDER_EVENTS",
    "AppOrderEvent",
    "AppOrderInfo",
    "AppOrderStatus",
    "AppOrderType",
    "AppStatus",
    "EditionInfo",
    "OrderFrom",
    "PaidAppApi",
]


class AppOrderStatus(IntEnum):
    """order_status (path/91909). No 7: that one belongs to licence orders only."""

    UNPAID = 0  # 待支付
    PAID = 1  # 已支付
    CANCELLED = 2  # 已取消
    EXPIRED = 3  # 支付过期
    REFUNDING = 4  # 申请退款中
    REFUNDED = 5  # 退款成功
    REFUND_REJECTED = 6  # 退款被拒绝


class AppOrderType(IntEnum):
    NEW = 0  # 新购应用
    EXPAND = 1  # 扩容应用人数
    RENEW = 2  # 续期应用时间
    CHANGE_EDITION = 3  # 变更版本


class OrderFrom(IntEnum):
    CORP = 0  # 企业下单
    PROVIDER = 1  # 服务商代下单 (no operator_id)
    DEALER = 2  # 代理商代下单


class AppStatus(IntEnum):
    """edition_info.agent[].app_status (protocol doc §5.2)."""

    NONE = 0  # 没有付费
    TRIAL = 1  # 限时试用
    TRIAL_EXPIRED = 2  # 试用过期
    PAID = 3  # 付费有效期内
    PAID_EXPIRED = 4  # 付费过期
    UNLIMITED_TRIAL = 5  # 不限时试用
    OVER_LIMIT = 6  # 超人数未超7天
    OVER_LIMIT_LONG = 7  # 超人数超过7天


# The command-URL InfoTypes of 应用版本付费 that name an order (change_editon names none).
APP_ORDER_EVENTS = frozenset(
    {"open_order", "change_order", "pay_for_app_success", "refund", "cancel_order"}
)


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class AppOrderInfo:
    """One order as get_order / get_order_list describe it (times: Unix seconds)."""

    orderid: str
    order_status: int
    order_type: int | None
    paid_corpid: str
    suiteid: str
    edition_id: str
    edition_name: str
    price: int | None  # 分
    user_count: int | None
    order_period: int | None  # days
    order_time: int | None
    paid_time: int | None
    begin_time: int | None
    end_time: int | None
    order_from: int | None
    operator_id: str  # empty when the provider (or a dealer) ordered on the corp's behalf
    operator_corpid: str
    appid: int | None  # legacy multi-app suites only
    service_share_amount: int | None
    platform_share_amount: int | None
    dealer_share_amount: int | None
    dealer_corpid: str  # dealer_corp_info: only when a dealer is on record
    dealer_corp_name: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wecom(cls, data: Mapping[str, Any], *, endpoint: str) -> AppOrderInfo:
        """Return the order in ``data``; WeComTransportError if it lacks id or status.

        An answer without them is not one we can act on (a proxy page, a changed
        shape): treated like an unreadable body, so the caller retries later.
        """
        orderid = _text(data, "orderid")
        status = _int(data, "order_status")
        if not orderid or status not in {s.value for s in AppOrderStatus}:
            raise WeComTransportError(endpoint=endpoint, errmsg="order lacks orderid/order_status")
        dealer = data.get("dealer_corp_info")
        dealer = dealer if isinstance(dealer, Mapping) else {}
        raw = {k: v for k, v in data.items() if k not in ("errcode", "errmsg")}
        return cls(
            orderid=orderid,
            order_status=status,
            order_type=_int(data, "order_type"),
            paid_corpid=_text(data, "paid_corpid"),
            suiteid=_text(data, "suiteid"),
            edition_id=_text(data, "edition_id"),
            edition_name=_text(data, "edition_name"),
            price=_int(data, "price"),
            user_count=_int(data, "user_count"),
            order_period=_int(data, "order_period"),
            order_time=_int(data, "order_time"),
            paid_time=_int(data, "paid_time"),
            begin_time=_int(data, "begin_time"),
            end_time=_int(data, "end_time"),
            order_from=_int(data, "order_from"),
            operator_id=_text(data, "operator_id"),
            operator_corpid=_text(data, "operator_corpid"),
            appid=_int(data, "appid"),
            service_share_amount=_int(data, "service_share_amount"),
            platform_share_amount=_int(data, "platform_share_amount"),
            dealer_share_amount=_int(data, "dealer_share_amount"),
            dealer_corpid=_text(dealer, "corpid"),
            dealer_corp_name=_text(dealer, "corp_name"),
            raw=raw,
        )


@dataclass(frozen=True)
class EditionInfo:
    """This app's ``edition_info.agent`` entry; ``EditionInfo.parse({})`` is "no edition"."""

    edition_id: str = ""
    edition_name: str = ""
    app_status: int | None = None
    user_limit: int | None = None
    expired_time: int | None = None  # Unix seconds; the end of the trial or of the paid term
    is_virtual_version: bool = False
    is_shared_from_other_corp: bool = False

    @classmethod
    def parse(cls, entry: Mapping[str, Any] | None) -> EditionInfo:
        entry = entry or {}
        return cls(
            edition_id=_text(entry, "edition_id"),
            edition_name=_text(entry, "edition_name"),
            app_status=_int(entry, "app_status"),
            user_limit=_int(entry, "user_limit"),
            expired_time=_int(entry, "expired_time"),
            is_virtual_version=bool(entry.get("is_virtual_version", False)),
            is_shared_from_other_corp=bool(entry.get("is_shared_from_other_corp", False)),
        )

    @property
    def empty(self) -> bool:
        return not self.edition_id and self.app_status is None


@dataclass(frozen=True)
class AppOrderEvent:
    """An order callback's fields (path/91929–91932, 99353). Only a hint: read the order."""

    info_type: str
    suite_id: str
    paid_corpid: str
    timestamp: int | None
    order_id: str  # OrderId, or NewOrderId for change_order
    old_order_id: str = ""  # change_order only
    operator_id: str = ""  # open_order only; empty when the provider ordered

    @classmethod
    def from_raw(cls, info_type: str, raw: Mapping[str, Any]) -> AppOrderEvent:
        """Return the event; ValueError when the order id the event is about is missing."""
        if info_type not in APP_ORDER_EVENTS:
            raise ValueError(f"{info_type} is not an app-order event")
        new_id = _text(raw, "NewOrderId") if info_type == "change_order" else ""
        order_id = new_id or _text(raw, "OrderId")
        if not order_id:
            raise ValueError(f"{info_type} without an order id")
        return cls(
            info_type=info_type,
            suite_id=_text(raw, "SuiteId"),
            paid_corpid=_text(raw, "PaidCorpId"),
            timestamp=_int(raw, "TimeStamp"),
            order_id=order_id,
            old_order_id=_text(raw, "OldOrderId"),
            operator_id=_text(raw, "OperatorId"),
        )


class PaidAppApi(SuiteApi):
    """SuiteApi plus the three 应用版本付费 calls (same suite_access_token)."""

    @uses("app_get_order")
    def get_app_order(self, *, orderid: str) -> AppOrderInfo:
        """Return one order (the body's fields are the order's)."""
        body = self._call("app_get_order", json={"orderid": orderid})
        return AppOrderInfo.from_wecom(body, endpoint="app_get_order")

    @uses("app_get_order_list")
    def get_app_order_list(
        self, *, start_time: int, end_time: int, test_mode: int = 0
    ) -> list[AppOrderInfo]:
        """Return the orders placed in [start_time, end_time) (test_mode 1: test installs)."""
        if end_time < start_time:
            raise ValueError("end_time is before start_time")
        if test_mode not in (0, 1):
            raise ValueError("test_mode is 0 (正式授权) or 1 (测试授权)")
        body: JSON = self._call(
            "app_get_order_list",
            json={"start_time": start_time, "end_time": end_time, "test_mode": test_mode},
        )
        items = body.get("order_list") or []
        if not isinstance(items, list):
            raise WeComTransportError(endpoint="app_get_order_list", errmsg="order_list is no list")
        return [AppOrderInfo.from_wecom(item, endpoint="app_get_order_list") for item in items]

    @uses("prolong_try")
    def prolong_try(self, *, buyer_corpid: str, prolong_days: int, appid: int | None = None) -> int:
        """Extend the corp's trial by ``prolong_days``; return the new try_end_time."""
        if prolong_days < 1:
            raise ValueError("prolong_days must be at least 1")
        request: JSON = {"buyer_corpid": buyer_corpid, "prolong_days": prolong_days}
        if appid is not None:  # legacy multi-app suites only
            request["appid"] = appid
        body = self._call("prolong_try", json=request)
        end = _int(body, "try_end_time")
        if end is None:
            raise WeComTransportError(endpoint="prolong_try", errmsg="answer lacks try_end_time")
        return end
