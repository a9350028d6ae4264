"""Order status only moves forward, whatever order callbacks and polls arrive in.

The stateful test interleaves, over several orders at once, what WeCom does (pay,
refund request/approve/reject, expiry), what its callbacks do (delivered late, out
of order, twice, or never) and what the poller does. The mirror must never move
backwards, never get ahead of WeCom, and end equal to the simulator's truth.
"""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from licensing import services
from licensing.models import ORDER_PREDECESSORS
from licensing.models import ORDER_REACHABLE
from licensing.models import ORDER_TERMINAL
from licensing.models import ORDER_TRANSITIONS
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from sandbox.control import SandboxControlError
from tenants.models import Corp
from tests.licensing.conftest import Pushes
from tests.licensing.conftest import dispatch
from tests.licensing.conftest import install
from wecom.errors import WeComError

STATUSES = sorted(ORDER_TRANSITIONS)


def test_documented_moves_are_allowed_and_nothing_goes_back():
    assert ORDER_REACHABLE[0] == {1, 2, 3, 4, 5, 6, 7}
    assert ORDER_REACHABLE[1] == {4, 5, 6, 7}
    assert ORDER_REACHABLE[4] == {5, 6, 7}
    for status in (2, 3, 5, 7):
        assert ORDER_REACHABLE[status] == set()
        assert status in ORDER_TERMINAL
    for a, b in itertools.permutations(STATUSES, 2):
        assert not (b in ORDER_REACHABLE[a] and a in ORDER_REACHABLE[b])  # acyclic
    assert ORDER_PREDECESSORS[1] == {0}
    assert ORDER_PREDECESSORS[5] == {0, 1, 4}


@pytest.mark.parametrize(("start", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_transition_is_a_conditional_update(db, start, target):
    order = LicenseOrder.objects.create(
        order_id=f"o-{start}-{target}", status=start, corp=Corp.objects.create(corpid="wpT")
    )
    moved = services.license_order_transition(order=order, to=target, source="test")
    assert moved == (target in ORDER_REACHABLE[start])
    order.refresh_from_db()
    assert order.status == (target if moved else start)


class OrdersVersusWeCom(RuleBasedStateMachine):
    """One example: a fresh order per corp, then random WeCom / callback / poll steps."""

    platform = None  # set by the test
    ctl = None
    corps: list[Corp] = []
    buyer = ""

    def __init__(self) -> None:
        super().__init__()
        self.pushes = Pushes(self.ctl)
        self.orders: list[LicenseOrder] = []
        self.pending: list = []  # pushed, not delivered yet
        self.delivered: list = []
        self.last_seen: dict[str, int] = {}

    @initialize()
    def create_orders(self):
        for corp in self.corps:
            order = services.license_order_create(
                corp=corp, buyer_userid=self.buyer, base_count=1, months=1
            )
            self.orders.append(order)

    def _truth(self) -> dict[str, int]:
        ids = {o.order_id for o in self.orders}
        return {
            o["order_id"]: o["order_status"]
            for o in self.ctl.state()["orders"]
            if o["order_id"] in ids
        }

    def _collect(self) -> None:
        self.pending.extend(self.pushes.new())

    # --- WeCom's side ---------------------------------------------------------------
    @rule(i=st.integers(0, 2))
    def pay(self, i):
        with contextlib.suppress(SandboxControlError):  # not unpaid any more
            self.ctl.pay_order(self.orders[i].order_id)
        self._collect()

    @rule(i=st.integers(0, 2), action=st.sampled_from(["request", "approve", "reject"]))
    def refund(self, i, action):
        with contextlib.suppress(SandboxControlError):
            self.ctl.refund_order(self.orders[i].order_id, action)
        self._collect()

    @rule(i=st.integers(0, 2))
    def expire(self, i):
        with contextlib.suppress(SandboxControlError):
            self.ctl.expire_order(self.orders[i].order_id)

    @rule(i=st.integers(0, 2))
    def cancel_through_the_platform(self, i):
        order = LicenseOrder.objects.get(pk=self.orders[i].pk)
        with contextlib.suppress(WeComError, services.LicenseError):
            services.license_order_cancel(order=order)

    # --- callbacks: late, out of order, twice, or lost ---------------------------------
    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def deliver(self, data):
        event = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        dispatch(event)
        self.delivered.append(event)

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data):
        dispatch(data.draw(st.sampled_from(self.delivered)))

    @precondition(lambda self: self.pending or self.delivered)
    @rule(data=st.data())
    def deliver_while_wecom_is_down(self, data):
        # The read-back after the callback fails: only the callback's own news applies.
        # A stale callback (pay after refund) would then regress a careless mirror.
        event = data.draw(st.sampled_from(self.pending + self.delivered))
        if event in self.pending:
            self.pending.remove(event)
            self.delivered.append(event)
        self.ctl.add_fault(endpoint="get_order", http_status=502, times=1)
        try:
            dispatch(event)
        finally:
            self.ctl.clear_faults()

    @precondition(lambda self: self.pending)
    @rule(data=st.data())
    def lose(self, data):
        self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))

    # --- the poller ---------------------------------------------------------------------
    @rule(i=st.integers(0, 2))
    def poll(self, i):
        services.license_order_sync(order=LicenseOrder.objects.get(pk=self.orders[i].pk))

    @invariant()
    def never_backwards_never_ahead(self):
        if not self.orders:
            return
        truth = self._truth()
        for order in LicenseOrder.objects.filter(pk__in=[o.pk for o in self.orders]):
            previous = self.last_seen.get(order.order_id)
            if previous is not None:
                assert order.status == previous or order.status in ORDER_REACHABLE[previous]
            real = truth[order.order_id]
            assert order.status == real or real in ORDER_REACHABLE[order.status]
            self.last_seen[order.order_id] = order.status

    def teardown(self):
        try:
            if self.orders:
                # Whatever was lost, one more poll of each order converges to the truth.
                for order in self.orders:
                    services.license_order_sync(order=LicenseOrder.objects.get(pk=order.pk))
                truth = self._truth()
                for order in LicenseOrder.objects.filter(pk__in=[o.pk for o in self.orders]):
                    assert order.status == truth[order.order_id], order.order_id
                    if order.status in (1, 4, 5, 6):
                        assert order.accounts_synced_at is not None
        finally:
            self._unblock()

    def _unblock(self) -> None:
        """Leave no unpaid or refunding order behind: it would block the next example."""
        for order_id, status in self._truth().items():
            if status == OrderStatus.UNPAID:
                self.ctl.expire_order(order_id)
            elif status == OrderStatus.REFUNDING:
                self.ctl.refund_order(order_id, "approve")


def test_callbacks_and_polls_in_any_order_converge_to_wecom(platform, ctl, buyer):
    OrdersVersusWeCom.ctl = ctl
    OrdersVersusWeCom.corps = [install(platform, ctl, c["corpid"]).corp for c in platform.corps]
    OrdersVersusWeCom.buyer = buyer
    run_state_machine_as_test(
        OrdersVersusWeCom,
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,  # no example files written into the repository
        ),
    )
