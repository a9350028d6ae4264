"""Property: whatever the order, every authorization ends in the state of its newest event.

A Hypothesis state machine plays WeCom with the simulator: installs, change_auth,
cancel_auth and (代开发) reset_permanent_code for several corps across two suites, the
clock ticking 0–2 s between actions, so many events share a second. Each pushed
callback is delivered through the real callback URL at a random moment, possibly
twice (WeCom's retries), and processed from either lane (priority: auth codes;
default: the rest) in random order; processed rows are replayed by "ops" at random.

After each step: no live tenant has lost its permanent code. At the end, with every
callback delivered and processed: each authorization is in the state of its newest
event by TimeStamp, which is the simulator's truth, permanent code included; no row is
left pending; a row fails only for an auth code WeCom refused (40078: the install it
came from had been replaced or cancelled by the time it was exchanged).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.test import override_settings
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from callbacks import services
from callbacks.models import CallbackEvent
from sandbox import start_sandbox
from tenants import credentials
from tenants.models import Authorization
from tests.conftest import register_platform
from tests.tenants import lifecycle_support as ls

CORPS = 3
PERMISSIONS = ["contact:base:read", "message:send", "external_contact:read"]


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # A frozen clock: TimeStamps (and so ties and identical payloads) follow the
        # steps, never the machine's speed, so a failing example replays exactly.
        self.sandbox = start_sandbox(ticket_interval=0, frozen_clock=True)
        self.override = override_settings(
            WECOM_API_BASE=self.sandbox.base_url, WECOM_INSTALL_BASE=self.sandbox.base_url
        )
        self.override.enable()
        self.platform = register_platform(self.sandbox)
        self.ctl = self.platform.control
        self.client = Client()
        self.suites = [self.platform.suite, self.platform.template]
        self.corpids = [c["corpid"] for c in self.platform.corps[:CORPS]]
        self.last_push = max((p["id"] for p in self.ctl.pushes()), default=0)
        self.undelivered: list[dict] = []
        self.lanes: dict[bool, list[int]] = {True: [], False: []}  # priority → row ids
        self.processed: list[int] = []
        self.cancelled: dict[tuple[str, str], int] = {}  # (suite, corp) → second of its cancel

    def teardown(self) -> None:
        try:
            self._settle()
            self._check_the_truth()
        finally:
            self.ctl.close()
            self.override.disable()
            self.sandbox.stop()

    # --- WeCom's side ---------------------------------------------------------------------

    def _truth(self, suite, corpid):
        return self.sandbox.state.auth(suite.suite_id, corpid)

    def _collect(self) -> None:
        pushes = self.ctl.pushes(since_id=self.last_push)
        if pushes:
            self.last_push = max(p["id"] for p in pushes)
            self.undelivered.extend(pushes)

    def _pairs(self, *, active: bool, suites=None) -> list[tuple]:
        pairs = []
        for suite in suites or self.suites:
            for corpid in self.corpids:
                truth = self._truth(suite, corpid)
                if (truth is not None and truth.active) == active:
                    pairs.append((suite, corpid))
        return pairs

    @precondition(lambda self: self._pairs(active=False))
    @rule(data=st.data())
    def install(self, data):
        suite, corpid = data.draw(st.sampled_from(self._pairs(active=False)))
        self.ctl.install(suite.suite_id, corpid)
        self._collect()

    @precondition(lambda self: self._pairs(active=True))
    @rule(data=st.data())
    def cancel(self, data):
        suite, corpid = data.draw(st.sampled_from(self._pairs(active=True)))
        if self.cancelled.get((suite.suite_id, corpid)) == self.sandbox.state.ts():
            # A second cancel of the tenant in the same second would be byte for byte the
            # first (cancel_auth carries no event id), so the inbox would take it for
            # WeCom's retry of it. WeCom's reinstalls take a person far longer.
            self.sandbox.advance(1)
        self.ctl.cancel_auth(suite.suite_id, corpid)
        self.cancelled[(suite.suite_id, corpid)] = self.sandbox.state.ts()
        self._collect()

    @precondition(lambda self: self._pairs(active=True))
    @rule(data=st.data(), permissions=st.lists(st.sampled_from(PERMISSIONS), unique=True))
    def change(self, data, permissions):
        suite, corpid = data.draw(st.sampled_from(self._pairs(active=True)))
        self.ctl.change_auth(suite.suite_id, corpid, app_permissions=permissions)
        self._collect()

    @precondition(lambda self: self._pairs(active=True, suites=[self.platform.template]))
    @rule(data=st.data())
    def reset(self, data):
        pairs = self._pairs(active=True, suites=[self.platform.template])
        template, corpid = data.draw(st.sampled_from(pairs))
        self.ctl.reset_permanent_code(template.suite_id, corpid)
        self._collect()

    @rule(seconds=st.sampled_from([0, 0, 1, 2]))
    def tick(self, seconds):
        if seconds:
            self.sandbox.advance(seconds)

    # --- the network and the platform ------------------------------------------------------

    @precondition(lambda self: self.undelivered)
    @rule(data=st.data(), twice=st.booleans())
    def deliver(self, data, twice):
        push = self.undelivered.pop(data.draw(st.integers(0, len(self.undelivered) - 1)))
        row = ls.deliver_push(self.client, self.platform, push)
        if twice:
            assert ls.deliver_push(self.client, self.platform, push).pk == row.pk
        if row.pk not in self.lanes[row.priority] and row.status == "pending":
            self.lanes[row.priority].append(row.pk)

    @precondition(lambda self: self.lanes[True] or self.lanes[False])
    @rule(data=st.data())
    def process(self, data):
        lanes = [lane for lane in (True, False) if self.lanes[lane]]
        lane = self.lanes[data.draw(st.sampled_from(lanes))]
        pk = lane.pop(data.draw(st.integers(0, len(lane) - 1)))
        self._process(pk, lane)

    @precondition(lambda self: self.processed)
    @rule(data=st.data())
    def replay(self, data):
        pk = data.draw(st.sampled_from(self.processed))
        row = CallbackEvent.objects.get(pk=pk)
        if services.callback_replay(event=row):
            self.lanes[row.priority].append(pk)

    def _process(self, pk: int, lane: list[int]) -> None:
        services.callback_process(event_id=pk)
        row = CallbackEvent.objects.get(pk=pk)
        if row.status == CallbackEvent.Status.PENDING:
            # A transient failure backs off: make it due now, it waits in its lane.
            CallbackEvent.objects.filter(pk=pk).update(next_attempt_at=None)
            lane.append(pk)
        elif pk not in self.processed:
            self.processed.append(pk)

    @invariant()
    def a_live_tenant_keeps_its_permanent_code(self):
        live = Authorization.objects.filter(
            suite__in=self.suites, status=Authorization.Status.ACTIVE
        )
        for authorization in live:
            assert authorization.permanent_code_sealed, authorization
            assert authorization.permanent_code

    # --- the end -------------------------------------------------------------------------------

    def _settle(self) -> None:
        self._collect()
        for push in self.undelivered:
            row = ls.deliver_push(self.client, self.platform, push)
            if row.status == "pending" and row.pk not in self.lanes[row.priority]:
                self.lanes[row.priority].append(row.pk)
        self.undelivered = []
        # Newest first, alternating lanes: the order that tests event-time ordering most.
        for _ in range(20):
            if not (self.lanes[True] or self.lanes[False]):
                break
            for priority in (False, True):
                lane = self.lanes[priority]
                while lane:
                    self._process(lane.pop(), [])
            leftover = CallbackEvent.objects.filter(
                suite_id__in=[s.suite_id for s in self.suites], status="pending"
            )
            for row in leftover:
                CallbackEvent.objects.filter(pk=row.pk).update(next_attempt_at=None)
                self.lanes[row.priority].append(row.pk)

    def _check_the_truth(self) -> None:
        rows = CallbackEvent.objects.filter(suite_id__in=[s.suite_id for s in self.suites])
        assert not rows.filter(status__in=["pending", "processing"]).exists()
        for row in rows.filter(status="failed"):
            assert "40078" in row.last_error, (row.info_type, row.last_error)
        for suite in self.suites:
            for corpid in self.corpids:
                truth = self._truth(suite, corpid)
                ours = Authorization.objects.filter(suite=suite, corp__corpid=corpid).first()
                if truth is None:
                    assert ours is None
                    continue
                assert ours is not None, (suite.suite_id, corpid, truth.status)
                if truth.active:
                    assert ours.status == Authorization.Status.ACTIVE, (ours, ours.status_reason)
                    assert ours.permanent_code == truth.permanent_code, ours
                    credentials.token_invalidate(ours)
                    assert credentials.token_get(ours).value
                else:
                    assert ours.status == Authorization.Status.CANCELLED, (ours, ours.status)
                    assert ours.permanent_code_sealed == ""


@pytest.mark.slow
@pytest.mark.django_db
def test_every_authorization_ends_in_the_state_of_its_newest_event():
    run_state_machine_as_test(
        Lifecycle,
        settings=hypothesis_settings(
            max_examples=40,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
