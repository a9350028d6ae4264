"""System-event URL, licences (§8.3): payment, refund, auto-activation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wecom.events.base import Event
from wecom.events.base import int_of
from wecom.events.base import items_of
from wecom.events.base import registered
from wecom.events.base import required
from wecom.events.base import text_of


@registered("license_pay_success")
@dataclass(frozen=True, slots=True, kw_only=True)
class LicensePaySuccess(Event):
    # For multi-corp orders this is the sub-order id, not the parent order.
    order_id: str
    buyer_user_id: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common, order_id=required(raw, "OrderId"), buyer_user_id=text_of(raw, "BuyerUserId")
        )


@registered("license_refund")
@dataclass(frozen=True, slots=True, kw_only=True)
class LicenseRefund(Event):
    order_id: str
    order_status: int | None = None  # 1 refunded, 2 refund rejected

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        return cls(
            **common, order_id=required(raw, "OrderId"), order_status=int_of(raw, "OrderStatus")
        )


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


@registered("auto_activate")
@dataclass(frozen=True, slots=True, kw_only=True)
class AutoActivate(Event):
    scene: int | None = None
    accounts: tuple[ActivatedAccount, ...] = ()

    @classmethod
    def build(cls, raw: dict[str, Any], common: dict[str, Any]) -> Event:
        # path/95994 shows one AccountList; a batch may repeat the element
        # [unverified], which the raw dict turns into a list. Read both alike.
        accounts = tuple(
            ActivatedAccount(
                active_code=text_of(item, "ActiveCode"),
                type=int_of(item, "Type"),
                expire_time=int_of(item, "ExpireTime"),
                user_id=text_of(item, "UserId"),
                previous_status=int_of(item, "PreviousStatus"),
                previous_active_code=text_of(item, "PreviousActiveCode"),
            )
            for item in items_of(raw.get("AccountList"))
        )
        return cls(**common, scene=int_of(raw, "Scene"), accounts=accounts)
