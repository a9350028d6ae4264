"""SandboxControl: a thin httpx client for the simulator's /sandbox control API.

Tests and `make run` use it instead of hand-written requests. Every method returns
the decoded JSON answer and raises SandboxControlError on a non-2xx answer.
"""

from __future__ import annotations

from typing import Any

import httpx


class SandboxControlError(RuntimeError):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"sandbox control answered {status}: {body}")
        self.status = status
        self.body = body


class SandboxControl:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, **params) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        resp = self._http.request(method, f"/sandbox/{path}", json=body, params=query)
        data = resp.json()
        if resp.is_error:
            raise SandboxControlError(resp.status_code, data)
        return data

    @staticmethod
    def _body(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    # ----- configuration and inspection ----------------------------------------------

    def config(self) -> dict[str, Any]:
        return self._call("GET", "config")

    def settings(self, **values: Any) -> dict[str, Any]:
        return self._call("POST", "settings", values)

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def snapshot(self, path: str | None = None) -> dict[str, Any]:
        return self._call("POST", "snapshot", self._body(path=path))

    def add_suite(self, **suite: Any) -> dict[str, Any]:
        return self._call("POST", "suites", suite)["suite"]

    def add_corp(self, **corp: Any) -> dict[str, Any]:
        return self._call("POST", "corps", corp)["corp"]

    def add_user(self, corpid: str, **user: Any) -> dict[str, Any]:
        return self._call("POST", f"corps/{corpid}/users", user)["user"]

    def update_user(self, corpid: str, userid: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", f"corps/{corpid}/users/{userid}", fields)["user"]

    def remove_test_corp(self, corpid: str) -> dict[str, Any]:
        return self._call("POST", f"corps/{corpid}/remove_test", {})

    # ----- authorization lifecycle ---------------------------------------------------

    def install(
        self,
        suite_id: str,
        corpid: str,
        *,
        state: str | None = None,
        test: bool = False,
        push: bool = True,
    ) -> dict[str, Any]:
        body = self._body(suite_id=suite_id, corpid=corpid, state=state, test=test, push=push)
        return self._call("POST", "install", body)

    def cancel_auth(self, suite_id: str, corpid: str) -> dict[str, Any]:
        return self._call("POST", "cancel_auth", {"suite_id": suite_id, "corpid": corpid})

    def change_auth(self, suite_id: str, corpid: str, **changes: Any) -> dict[str, Any]:
        return self._call(
            "POST", "change_auth", {"suite_id": suite_id, "corpid": corpid, **changes}
        )

    def reset_permanent_code(self, suite_id: str, corpid: str) -> dict[str, Any]:
        return self._call("POST", "reset_permanent_code", {"suite_id": suite_id, "corpid": corpid})

    def change_edition(self, suite_id: str, corpid: str, **changes: Any) -> dict[str, Any]:
        """Change the corp's paid edition (edition_id, app_status …): pushes change_editon."""
        return self._call(
            "POST", "change_edition", {"suite_id": suite_id, "corpid": corpid, **changes}
        )

    def activity(
        self, suite_id: str, corpid: str, event: str, *, effect_time: int | None = None
    ) -> dict[str, Any]:
        """Push a low-activity / disuse event (low_active_alert … reopen_inactive_agent)."""
        body = self._body(suite_id=suite_id, corpid=corpid, event=event, effect_time=effect_time)
        return self._call("POST", "activity", body)

    def dissolve_corp(
        self, corpid: str, *, errcode: int | None = None, cancel_auth_after: float | None = None
    ) -> dict[str, Any]:
        body = self._body(corpid=corpid, errcode=errcode, cancel_auth_after=cancel_auth_after)
        return self._call("POST", "dissolve_corp", body)

    def contact_event(
        self,
        corpid: str,
        change_type: str,
        *,
        suite_id: str | None = None,
        info_type: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = self._body(
            corpid=corpid,
            change_type=change_type,
            suite_id=suite_id,
            info_type=info_type,
            data=data,
        )
        return self._call("POST", "contact_event", body)

    def change_app_admin(
        self, suite_id: str, corpid: str, admins: list[str] | None = None
    ) -> dict[str, Any]:
        body = self._body(suite_id=suite_id, corpid=corpid, admins=admins)
        return self._call("POST", "change_app_admin", body)

    def unlicensed(self, corpid: str, userid: str, suite_id: str | None = None) -> dict[str, Any]:
        return self._call(
            "POST", "unlicensed", self._body(corpid=corpid, userid=userid, suite_id=suite_id)
        )

    # ----- identity codes ------------------------------------------------------------

    def oauth_code(
        self,
        suite_id: str,
        corpid: str,
        userid: str | None = None,
        *,
        scope: str | None = None,
        openid: str | None = None,
    ) -> str:
        body = self._body(
            suite_id=suite_id, corpid=corpid, userid=userid, scope=scope, openid=openid
        )
        return self._call("POST", "oauth_code", body)["code"]

    def login_code(self, corpid: str, userid: str, *, usertype: int | None = None) -> str:
        body = self._body(corpid=corpid, userid=userid, usertype=usertype)
        return self._call("POST", "login_code", body)["auth_code"]

    # ----- license orders ------------------------------------------------------------

    def pay_order(self, order_id: str) -> dict[str, Any]:
        return self._call("POST", f"orders/{order_id}/pay", {})["order"]

    def refund_order(self, order_id: str, action: str = "approve") -> dict[str, Any]:
        return self._call("POST", f"orders/{order_id}/refund", {"action": action})["order"]

    def expire_order(self, order_id: str) -> dict[str, Any]:
        return self._call("POST", f"orders/{order_id}/expire", {})["order"]

    # ----- paid apps (应用版本付费) ----------------------------------------------------

    def create_app_order(self, suite_id: str, corpid: str, **spec: Any) -> dict[str, Any]:
        """Place an order (edition_id, user_count, period_days, order_type, order_from,
        dealer): pushes open_order."""
        body = {"suite_id": suite_id, "corpid": corpid, **spec}
        return self._call("POST", "app_orders", body)["order"]

    def app_order(self, orderid: str, verb: str, /, **body: Any) -> dict[str, Any]:
        """``verb``: pay | cancel | expire | refund (body action=request|approve|reject) |
        change_price (body price)."""
        return self._call("POST", f"app_orders/{orderid}/{verb}", body)

    def expire_trial(self, suite_id: str, corpid: str) -> dict[str, Any]:
        """Let the corp's trial run out now: app_status 2 and change_editon."""
        body = {"suite_id": suite_id, "corpid": corpid}
        return self._call("POST", "app_trial/expire", body)["edition"]

    # ----- tickets, clock, tokens, faults --------------------------------------------

    def push_ticket(self, suite_id: str | None = None) -> dict[str, str]:
        return self._call("POST", "push_ticket", self._body(suite_id=suite_id))["tickets"]

    def clock(self) -> dict[str, Any]:
        return self._call("GET", "clock")

    def advance(self, seconds: float) -> dict[str, Any]:
        return self._call("POST", "clock/advance", {"seconds": seconds})

    def revoke_tokens(self, **filters: Any) -> int:
        return self._call("POST", "tokens/revoke", filters)["revoked"]

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        return self._call("POST", "faults", fault)["fault"]

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")["faults"]

    def clear_faults(self) -> int:
        return self._call("DELETE", "faults")["cleared"]

    # ----- logs ----------------------------------------------------------------------

    def requests(self, endpoint: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        return self._call("GET", "requests", endpoint=endpoint, **filters)["requests"]

    def clear_requests(self) -> int:
        return self._call("DELETE", "requests")["cleared"]

    def pushes(self, info_type: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        return self._call("GET", "pushes", info_type=info_type, **filters)["pushes"]

    def clear_pushes(self) -> int:
        return self._call("DELETE", "pushes")["cleared"]

    def wait_pushes(self, timeout: float = 10) -> bool:
        return self._call("POST", "pushes/wait", {"timeout": timeout})["drained"]

    def verify_url(self, channel: str = "command", suite_id: str | None = None) -> dict[str, Any]:
        return self._call("POST", "verify_url", self._body(channel=channel, suite_id=suite_id))
