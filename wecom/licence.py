"""Licence APIs (接口许可, §6): orders, jobs, payment, accounts, transfer, sharing.

Authorised by the provider_access_token; ``ProviderApi`` (wecom/provider.py) carries
them flat (``provider.create_new_order(...)``), named exactly as the WeCom API, with
list arguments named and shaped as the wire field.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from wecom.endpoints import PAGE_LIMIT_MAX
from wecom.endpoints import TokenKind
from wecom.facade import JSON
from wecom.facade import Facade
from wecom.facade import check_page_limit
from wecom.facade import compact
from wecom.facade import uses


class LicenceApi(Facade):
    """The provider token's licence APIs (§6.3 orders and jobs, §6.4 accounts)."""

    kind = TokenKind.PROVIDER

    # §6.3 orders --------------------------------------------------------------------
    @uses("create_new_order")
    def create_new_order(
        self,
        *,
        corpid: str,
        buyer_userid: str,
        base_count: int = 0,
        external_contact_count: int = 0,
        months: int = 0,
        days: int = 0,
    ) -> JSON:
        """Return {"order_id"} of a new purchase order (duration = months*31 + days)."""
        duration: JSON = {"months": months}
        if days:  # test corps buy exactly 1 month and must not send days
            duration["days"] = days
        return self._call(
            "create_new_order",
            json={
                "corpid": corpid,
                "buyer_userid": buyer_userid,
                "account_count": {
                    "base_count": base_count,
                    "external_contact_count": external_contact_count,
                },
                "account_duration": duration,
            },
        )

    @uses("create_renew_order_job")
    def create_renew_order_job(
        self, *, corpid: str, account_list: Sequence[Mapping[str, Any]], jobid: str | None = None
    ) -> JSON:
        """Return {"jobid", "invalid_account_list"}; pass jobid again to append (≤1000/call)."""
        return self._call(
            "create_renew_order_job",
            json=compact(corpid=corpid, account_list=[dict(a) for a in account_list], jobid=jobid),
        )

    @uses("submit_order_job")
    def submit_order_job(
        self,
        *,
        jobid: str,
        buyer_userid: str,
        months: int | None = None,
        new_expire_time: int | None = None,
    ) -> JSON:
        """Return {"order_id"} of the renewal; give exactly one of months / new_expire_time."""
        if (months is None) == (new_expire_time is None):
            raise ValueError("give exactly one of months or new_expire_time")
        return self._call(
            "submit_order_job",
            json={
                "jobid": jobid,
                "buyer_userid": buyer_userid,
                "account_duration": compact(months=months, new_expire_time=new_expire_time),
            },
        )

    @uses("list_order")
    def list_order(
        self,
        *,
        corpid: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> JSON:
        """Return one page of orders: {"order_list", "next_cursor", "has_more"}."""
        check_time_range(start_time, end_time)
        check_page_limit(limit)
        return self._call(
            "list_order",
            json=compact(
                corpid=corpid, start_time=start_time, end_time=end_time, cursor=cursor, limit=limit
            ),
        )

    def list_order_all(
        self,
        *,
        corpid: str | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int = PAGE_LIMIT_MAX,
    ) -> Iterator[JSON]:
        """Return an iterator over every order_list item across pages."""
        check_time_range(start_time, end_time)
        return self._pages(
            "list_order",
            compact(corpid=corpid, start_time=start_time, end_time=end_time),
            limit=limit,
        )

    @uses("get_order")
    def get_order(self, *, order_id: str) -> JSON:
        """Return {"order": {...}} (note: order.corpid, account_duration.months)."""
        return self._call("get_order", json={"order_id": order_id})

    @uses("list_order_account")
    def list_order_account(
        self, *, order_id: str, cursor: str | None = None, limit: int | None = None
    ) -> JSON:
        """Return one page of an order's accounts (codes, or userids for renewals)."""
        check_page_limit(limit)
        return self._call(
            "list_order_account", json=compact(order_id=order_id, cursor=cursor, limit=limit)
        )

    def list_order_account_all(
        self, *, order_id: str, limit: int = PAGE_LIMIT_MAX
    ) -> Iterator[JSON]:
        """Return an iterator over every account_list item of an order."""
        return self._pages("list_order_account", {"order_id": order_id}, limit=limit)

    @uses("cancel_order")
    def cancel_order(self, *, order_id: str, corpid: str | None = None) -> JSON:
        """Return {} on success; only unpaid orders (corpid omitted only for multi-corp)."""
        return self._call("cancel_order", json=compact(corpid=corpid, order_id=order_id))

    @uses("create_new_order_job")
    def create_new_order_job(
        self, *, buy_list: Sequence[Mapping[str, Any]], jobid: str | None = None
    ) -> JSON:
        """Return {"jobid", "invalid_list"} of a multi-corp purchase job (≤10 per call)."""
        return self._call(
            "create_new_order_job", json=compact(buy_list=[dict(b) for b in buy_list], jobid=jobid)
        )

    @uses("submit_new_order_job")
    def submit_new_order_job(self, *, jobid: str, buyer_userid: str) -> JSON:
        """Return {} once the multi-corp job is submitted."""
        return self._call(
            "submit_new_order_job", json={"jobid": jobid, "buyer_userid": buyer_userid}
        )

    @uses("new_order_job_result")
    def new_order_job_result(self, *, jobid: str) -> JSON:
        """Return {"status" (1 done, 2 running, 3 failed), "order_id", "fail_list"}."""
        return self._call("new_order_job_result", json={"jobid": jobid})

    @uses("get_union_order")
    def get_union_order(
        self, *, order_id: str, cursor: str | None = None, limit: int | None = None
    ) -> JSON:
        """Return one page of a multi-corp order: {"order", "buy_list", cursor fields}."""
        check_page_limit(limit)
        return self._call(
            "get_union_order", json=compact(order_id=order_id, cursor=cursor, limit=limit)
        )

    def get_union_order_all(self, *, order_id: str, limit: int = PAGE_LIMIT_MAX) -> Iterator[JSON]:
        """Return an iterator over every buy_list item (sub-orders) of a multi-corp order."""
        return self._pages("get_union_order", {"order_id": order_id}, limit=limit)

    @uses("submit_pay_job")
    def submit_pay_job(self, *, payer_userid: str, order_id: str) -> JSON:
        """Return {"jobid"} of a payment from the recharge balance."""
        return self._call(
            "submit_pay_job", json={"payer_userid": payer_userid, "order_id": order_id}
        )

    @uses("pay_job_result")
    def pay_job_result(self, *, jobid: str) -> JSON:
        """Return {"status", "pay_job_result": {"errcode", ...}}; inner errcode = payment."""
        return self._call("pay_job_result", json={"jobid": jobid})

    @uses("get_account_balance")
    def get_account_balance(self) -> JSON:
        """Return {"balance"} of the recharge account, in 分."""
        return self._call("get_account_balance")

    # §6.4 accounts ------------------------------------------------------------------
    @uses("active_account")
    def active_account(self, *, corpid: str, active_code: str, userid: str) -> JSON:
        """Return {} once active_code is bound to userid."""
        return self._call(
            "active_account", json={"active_code": active_code, "corpid": corpid, "userid": userid}
        )

    @uses("batch_active_account")
    def batch_active_account(
        self, *, corpid: str, active_list: Sequence[Mapping[str, Any]]
    ) -> JSON:
        """Return {"active_result": [...]} with a per-item errcode (≤1000 items)."""
        return self._call(
            "batch_active_account",
            json={"corpid": corpid, "active_list": [dict(a) for a in active_list]},
        )

    @uses("active_account_by_type")
    def active_account_by_type(self, *, corpid: str, userid: str, account_type: int) -> JSON:
        """Return {}; WeCom picks the unbound code of that type expiring soonest."""
        return self._call(
            "active_account_by_type",
            json={"type": account_type, "corpid": corpid, "userid": userid},
        )

    @uses("get_active_info_by_code")
    def get_active_info_by_code(self, *, corpid: str, active_code: str) -> JSON:
        """Return {"active_info": {...}} for one activation code."""
        return self._call(
            "get_active_info_by_code", json={"corpid": corpid, "active_code": active_code}
        )

    @uses("batch_get_active_info_by_code")
    def batch_get_active_info_by_code(
        self, *, corpid: str, active_code_list: Sequence[str]
    ) -> JSON:
        """Return active_info_list and invalid_active_code_list for ≤1000 codes."""
        return self._call(
            "batch_get_active_info_by_code",
            json={"corpid": corpid, "active_code_list": list(active_code_list)},
        )

    @uses("list_actived_account")
    def list_actived_account(
        self, *, corpid: str, cursor: str | None = None, limit: int | None = None
    ) -> JSON:
        """Return one page of a corp's activated accounts (expired ones included)."""
        check_page_limit(limit)
        return self._call(
            "list_actived_account", json=compact(corpid=corpid, cursor=cursor, limit=limit)
        )

    def list_actived_account_all(
        self, *, corpid: str, limit: int = PAGE_LIMIT_MAX
    ) -> Iterator[JSON]:
        """Return an iterator over every activated account of a corp."""
        return self._pages("list_actived_account", {"corpid": corpid}, limit=limit)

    @uses("get_active_info_by_user")
    def get_active_info_by_user(self, *, corpid: str, userid: str) -> JSON:
        """Return {"active_status", "active_info_list"} for one member."""
        return self._call("get_active_info_by_user", json={"corpid": corpid, "userid": userid})

    @uses("batch_transfer_license")
    def batch_transfer_license(
        self, *, corpid: str, transfer_list: Sequence[Mapping[str, Any]]
    ) -> JSON:
        """Return {"transfer_result": [...]} with a per-item errcode (≤1000 items)."""
        return self._call(
            "batch_transfer_license",
            json={"corpid": corpid, "transfer_list": [dict(t) for t in transfer_list]},
        )

    @uses("batch_share_active_code")
    def batch_share_active_code(
        self,
        *,
        from_corpid: str,
        to_corpid: str,
        share_list: Sequence[Mapping[str, Any]],
        corp_link_type: int | None = None,
    ) -> JSON:
        """Return {"share_result": [...]} listing failures only (≤1000 items)."""
        return self._call(
            "batch_share_active_code",
            json=compact(
                from_corpid=from_corpid,
                to_corpid=to_corpid,
                share_list=[dict(s) for s in share_list],
                corp_link_type=corp_link_type,
            ),
        )

    @uses("get_app_license_info")
    def get_app_license_info(self, *, corpid: str, suite_id: str, appid: int | None = None) -> JSON:
        """Return license_status, trail_info (sic) and license_check_time."""
        return self._call(
            "get_app_license_info", json=compact(corpid=corpid, suite_id=suite_id, appid=appid)
        )

    @uses("set_auto_active_status")
    def set_auto_active_status(self, *, corpid: str, auto_active_status: int) -> JSON:
        """Return {} once auto-activation is switched (0 off, 1 on)."""
        return self._call(
            "set_auto_active_status",
            json={"corpid": corpid, "auto_active_status": auto_active_status},
        )

    @uses("get_auto_active_status")
    def get_auto_active_status(self, *, corpid: str) -> JSON:
        """Return {"auto_active_status"} (0 off, 1 on)."""
        return self._call("get_auto_active_status", json={"corpid": corpid})


def check_time_range(start_time: int | None, end_time: int | None) -> None:
    # §6.3: list_order's creation-time filter comes as a pair or not at all.
    if (start_time is None) != (end_time is None):
        raise ValueError("give both start_time and end_time, or neither")
