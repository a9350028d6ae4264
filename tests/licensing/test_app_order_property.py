"""Paid-app orders and editions converge to WeCom's truth whatever the callbacks do.

A Hypothesis state machine interleaves what WeCom does (orders placed, paid, repriced,
cancelled, lapsed, refunded; trials extended and running out), what its callbacks do
(delivered late, out of order, twice, while WeCom is down, or never) and what the
poller does. The mirror's order statuses never move backwards and never get ahead of
WeCom; after the poller every order it knows and every edition equals the simulator's
truth, and after the reconciler so does every order WeCom has.
"""

from __future__ import annotations

import contextlib

from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from licensing.app_orders import editions
from licensing.app_orders import services
from licensing.app_orders.models import APP_ORDER_REACHABLE
from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TenantEdition
from licensing.app_orders.reconcile import app_orders_reconcile
from sandbox.control import SandboxControlError
from tenants.lifecycle import EventNotApplied
from tests.licensing.app_order_support import edition_mismatches
from tests.licensing.app_order_support import order_mismatches
from tests.licensing.app_order_support import poll_everything
from tests.licensing.app_order_support import truth_edition
from tests.licensing.app_order_support import truth_orders
from tests.licensing.conftest import Pushes
from tests.licensing.conftest import dispatch
from tests.licensing.conftest import install
from wecom.errors import WeComError

EDITIONS = ("ESBASIC", "ESPRO")


def _quietly(event) -> None:
    """Dispatch as the inbox would: a superseded change_editon is an outcome, not a bug."""
    with contextlib.suppress(EventNotApplied):
        dispatch(event)


class AppOrdersVersusWeCom(RuleBasedStateMachine):
    platform = None  # set by the test
    ctl = None

    def __init__(self) -> None:
        super().__init__()
        self.tenants: list = []
        self.pending: list = []  # pushed, not delivered yet
        self.delivered: list = []
        self.last_seen: dict[str, int] = {}
        self.orders: list[str] = []  # placed in this example (price changes add theirs)

    @initialize()
    def two_fresh_tenants(self):
        # Fresh corps per example: a trial used up by an earlier example would change what
        # WeCom pushes, and so what Hypothesis draws, when it replays this one.
        for n in range(2):
            corp = self.ctl.add_corp(name=f"付费企业{n}", users=[{"name": "管理员", "admin": True}])
            self.tenants.append(install(self.platform, self.ctl, corp["corpid"]))
        self.pushes = Pushes(self.ctl)
        for tenant in self.tenants:  # an order each to start from: examples get somewhere
            self._act(lambda c=tenant.corp.corpid: self.ctl.create_app_order(self.suite_id, c))

    @property
    def suite_id(self) -> str:
        return self.platform.suite.suite_id

    def _collect(self) -> None:
        self.pending.extend(self.pushes.new())

    def _pick(self, data) -> str | None:
        """An order of this example (drawn by index: the draw never depends on state
        outside the example, which Hypothesis replays)."""
        if not self.orders:
            return None
        return self.orders[data.draw(st.integers(0, len(self.orders) - 1))]

    def _act(self, action) -> None:
        with contextlib.suppress(SandboxControlError):  # not in the right status (409)
            answer = action()
            for key in ("order", "new_order"):
                order_id = (answer.get(key) or {}).get("orderid") if key in answer else None
                if order_id and order_id not in self.orders:
                    self.orders.append(order_id)
            if "orderid" in answer and answer["orderid"] not in self.orders:
                self.orders.append(answer["orderid"])
        self._collect()

    # --- WeCom's side ---------------------------------------------------------------------
    @rule(i=st.integers(0, 1), edition=st.sampled_from(EDITIONS), users=st.sampled_from([5, 50]))
    def place(self, i, edition, users):
        corpid = self.tenants[i].corp.corpid
        self._act(
            lambda: self.ctl.create_app_order(
                self.suite_id, corpid, edition_id=edition, user_count=users
            )
        )

    @rule(data=st.data())
    def pay(self, data):
        if order_id := self._pick(data):
            self._act(lambda: self.ctl.app_order(order_id, "pay"))

    @rule(data=st.data(), verb=st.sampled_from(["cancel", "expire"]))
    def close_unpaid(self, data, verb):
        if order_id := self._pick(data):
            self._act(lambda: self.ctl.app_order(order_id, verb))

    @rule(data=st.data(), price=st.integers(0, 10_000))
    def change_price(self, data, price):
        if order_id := self._pick(data):
            self._act(lambda: self.ctl.app_order(order_id, "change_price", price=price))

    @rule(data=st.data())
    def refund_request(self, data):
        if order_id := self._pick(data):
            self._act(lambda: self.ctl.app_order(order_id, "refund", action="request"))

    @rule(data=st.data(), step=st.sampled_from(["approve", "approve", "reject"]))
    def refund_decision(self, data, step):
        if order_id := self._pick(data):
            self._act(lambda: self.ctl.app_order(order_id, "refund", action=step))

    @rule(data=st.data())
    def refund_granted_at_once(self, data):
        # The request and the approval with nothing in between: a refunded order (and the
        # edition put back) turns up in most examples this way.
        if order_id := self._pick(data):
            self._act(lambda: self.ctl.app_order(order_id, "refund", action="request"))
            self._act(lambda: self.ctl.app_order(order_id, "refund", action="approve"))

    @rule(i=st.integers(0, 1))
    def trial_runs_out(self, i):
        self._act(lambda: self.ctl.expire_trial(self.suite_id, self.tenants[i].corp.corpid))

    @rule(i=st.integers(0, 1), days=st.integers(1, 20))
    def prolong_trial(self, i, days):
        with contextlib.suppress(WeComError, editions.PaidAppError):
            editions.trial_prolong(authorization=self.tenants[i], days=days, actor="hypothesis")
        self._collect()

    # --- callbacks: late, out of order, twice, while WeCom is down, or lost -----------------
    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data):
        event = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        _quietly(event)
        self.delivered.append(event)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data):
        _quietly(data.draw(st.sampled_from(self.delivered)))

    @precondition(lambda self: self.pending or self.delivered)
    @rule(data=st.data(), endpoint=st.sampled_from(["app_get_order", "get_auth_info_v1"]))
    def deliver_while_wecom_is_down(self, data, endpoint):
        event = data.draw(st.sampled_from(self.pending + self.delivered))
        if event in self.pending:
            self.pending.remove(event)
            self.delivered.append(event)
        self.ctl.add_fault(endpoint=endpoint, http_status=502, times=1)
        try:
            with contextlib.suppress(WeComError):  # the inbox would retry it later
                _quietly(event)
        finally:
            self.ctl.clear_faults()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def lose(self, data):
        self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))

    # --- the poller ---------------------------------------------------------------------------
    @rule(data=st.data())
    def poll_one(self, data):
        order = AppOrder.objects.filter(order_id=self._pick(data)).first()
        if order is not None:  # only an order the platform has heard of can be polled
            with contextlib.suppress(WeComError):
                services.app_order_sync(order=order)

    @invariant()
    def never_backwards_never_ahead(self):
        truth = truth_orders(self.ctl, self.suite_id)
        for order in AppOrder.objects.filter(suite=self.platform.suite):
            previous = self.last_seen.get(order.order_id)
            if previous is not None:
                assert order.status == previous or order.status in APP_ORDER_REACHABLE[previous]
            real = truth[order.order_id]["order_status"]
            assert order.status == real or real in APP_ORDER_REACHABLE[order.status]
            self.last_seen[order.order_id] = order.status

    def teardown(self):
        if not self.tenants:
            return
        # The poller alone: every order the platform has heard of, every edition.
        poll_everything()
        self.never_backwards_never_ahead()
        truth = truth_orders(self.ctl, self.suite_id)
        for order in AppOrder.objects.filter(suite=self.platform.suite):
            assert order_mismatches(order, truth[order.order_id]) == [], order.order_id
        self._editions_equal_the_truth()
        # Then the reconciler: every order WeCom has, including those never heard of.
        result = app_orders_reconcile()
        assert result.errors == []
        self.never_backwards_never_ahead()
        mirrored = {o.order_id: o for o in AppOrder.objects.filter(suite=self.platform.suite)}
        assert set(mirrored) == set(truth)
        for order_id, wecom in truth.items():
            assert order_mismatches(mirrored[order_id], wecom) == [], order_id
        self._editions_equal_the_truth()

    def _editions_equal_the_truth(self) -> None:
        for tenant in self.tenants:
            wecom = truth_edition(self.platform.sandbox, self.suite_id, tenant.corp.corpid)
            row = TenantEdition.objects.get(authorization=tenant)
            assert edition_mismatches(row, wecom) == [], tenant.corp.corpid
            tenant.refresh_from_db()
            assert {k: v for k, v in tenant.edition.items() if k != "agentid"} == wecom


def test_lost_duplicated_reordered_callbacks_converge_to_wecom(platform, ctl):
    AppOrdersVersusWeCom.platform = platform
    AppOrdersVersusWeCom.ctl = ctl
    run_state_machine_as_test(
        AppOrdersVersusWeCom,
        settings=settings(
            max_examples=20,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,  # no example files written into the repository
        ),
    )
