"""Lifecycle events are applied in event time (tenants/lifecycle.py), whatever the order.

Each test plays WeCom with the simulator (the truth), then delivers the callbacks it
would push through the real callback URL, in an order WeCom really produces, and
processes them like a worker. The newest event by TimeStamp wins; an older one changes
nothing and its row says why (status ``superseded``, counted in metrics); at the same
second WeCom's answer about the permanent code decides.
"""

from __future__ import annotations

import time

import pytest

from callbacks.models import CallbackEvent
from tenants import credentials
from tenants.models import Authorization
from tenants.models import FeedEvent
from tests.tenants import lifecycle_support as ls

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(platform, client):
    return World(platform, client)


class World:
    """The simulator and the platform, one third-party suite and one corp by default."""

    def __init__(self, platform, client) -> None:
        self.platform = platform
        self.client = client
        self.ctl = platform.control
        self.suite = platform.suite
        self.corpid = platform.corps[0]["corpid"]
        self.ts = int(time.time()) - 600

    def tick(self, seconds: int = 1) -> int:
        self.ts += seconds
        return self.ts

    def install(self, suite=None, corpid=None) -> str:
        """WeCom: the corp installs; return the create_auth's auth code."""
        suite = suite or self.suite
        return self.ctl.install(suite.suite_id, corpid or self.corpid, push=False)["auth_code"]

    def create_auth(self, code: str, ts: int, suite=None) -> CallbackEvent:
        suite = suite or self.suite
        return ls.deliver(self.client, suite, ls.create_auth_xml(suite.suite_id, code, ts))

    def corp_event(self, info_type: str, ts: int, suite=None, corpid=None) -> CallbackEvent:
        suite = suite or self.suite
        xml = ls.corp_event_xml(info_type, suite.suite_id, corpid or self.corpid, ts)
        return ls.deliver(self.client, suite, xml)

    def truth(self, suite=None, corpid=None):
        suite = suite or self.suite
        return self.platform.sandbox.state.auth(suite.suite_id, corpid or self.corpid)

    def ours(self, suite=None, corpid=None) -> Authorization:
        suite = suite or self.suite
        return Authorization.objects.get(suite=suite, corp__corpid=corpid or self.corpid)

    def live_with_the_truths_code(self, suite=None) -> Authorization:
        ours, truth = self.ours(suite), self.truth(suite)
        assert truth.active
        assert ours.status == Authorization.Status.ACTIVE
        assert ours.permanent_code == truth.permanent_code
        credentials.token_invalidate(ours)
        assert credentials.token_get(ours).value  # and WeCom takes it
        return ours


def test_an_older_cancel_never_cancels_the_reinstall_nor_erases_its_code(world):
    first = ls.process(world.create_auth(world.install(), world.tick()))
    assert first.status == "done"
    world.ctl.cancel_auth(world.suite.suite_id, world.corpid)
    cancel_ts = world.tick()
    reinstall = world.create_auth(world.install(), world.tick())
    cancel = world.corp_event("cancel_auth", cancel_ts)
    # create_auth rides the priority lane: the reinstall is processed first.
    assert ls.process(reinstall).status == "done"
    before = ls.not_applied("superseded", "older", "cancel_auth")
    cancel = ls.process(cancel)
    assert cancel.status == CallbackEvent.Status.SUPERSEDED
    assert f"cancel_auth of {cancel_ts} not applied" in cancel.result
    assert "newer install" in cancel.result
    assert ls.not_applied("superseded", "older", "cancel_auth") == before + 1
    ours = world.live_with_the_truths_code()
    assert ours.event_type == "create_auth"
    assert ours.event_timestamp == cancel_ts + 1
    assert ours.history.filter(action="event_superseded").count() == 1
    assert not FeedEvent.objects.filter(type="tenant.cancelled").exists()
    # An ops replay of the old cancel obeys the same rule.
    assert ls.replay(cancel).status == CallbackEvent.Status.SUPERSEDED
    world.live_with_the_truths_code()


def test_a_replayed_older_create_auth_never_brings_back_a_cancelled_tenant(world):
    install = ls.process(world.create_auth(world.install(), world.tick()))
    world.ctl.cancel_auth(world.suite.suite_id, world.corpid)
    assert ls.process(world.corp_event("cancel_auth", world.tick())).status == "done"
    replayed = ls.replay(install)
    assert replayed.status == CallbackEvent.Status.SUPERSEDED
    assert "a newer event followed" in replayed.result
    ours = world.ours()
    assert ours.status == Authorization.Status.CANCELLED
    assert ours.permanent_code_sealed == ""


def test_a_cancel_before_its_create_auth_keeps_the_late_install_out(world):
    code = world.install()
    install_ts = world.tick()
    world.ctl.cancel_auth(world.suite.suite_id, world.corpid)
    cancel = ls.process(world.corp_event("cancel_auth", world.tick()))
    assert cancel.status == "done"
    assert cancel.result == "cancelled before its install was seen"
    ours = world.ours()
    assert (ours.status, ours.event_timestamp) == (Authorization.Status.CANCELLED, install_ts + 1)
    # The install comes late: WeCom refuses its code now, and nothing comes back.
    late = ls.process(world.create_auth(code, install_ts))
    assert late.status == CallbackEvent.Status.FAILED
    assert "40078" in late.last_error
    assert world.ours().status == Authorization.Status.CANCELLED


@pytest.mark.parametrize("cancel_first", [True, False], ids=["cancel-first", "install-first"])
def test_tie_cancel_then_reinstall_in_one_second_ends_live(world, cancel_first):
    """Same TimeStamp: WeCom still accepts the new code, so the reinstall is the later event."""
    ls.process(world.create_auth(world.install(), world.tick()))
    world.ctl.cancel_auth(world.suite.suite_id, world.corpid)
    second = world.tick(5)
    reinstall = world.create_auth(world.install(), second)
    cancel = world.corp_event("cancel_auth", second)
    rows = [cancel, reinstall] if cancel_first else [reinstall, cancel]
    outcomes = [ls.process(row) for row in rows]
    world.live_with_the_truths_code()
    if cancel_first:
        assert [r.status for r in outcomes] == ["done", "done"]
    else:
        assert [r.status for r in outcomes] == ["done", "superseded"]
        assert "a tie" in outcomes[1].result
        assert "WeCom still accepts the stored permanent code" in outcomes[1].result


@pytest.mark.parametrize("cancel_first", [True, False], ids=["cancel-first", "install-first"])
def test_tie_install_then_cancel_in_one_second_ends_cancelled(world, cancel_first):
    """Same TimeStamp: WeCom refuses the install's code, so the cancel is the later event."""
    second = world.tick()
    install = world.create_auth(world.install(), second)
    if not cancel_first:
        assert ls.process(install).status == "done"
    world.ctl.cancel_auth(world.suite.suite_id, world.corpid)
    cancel = ls.process(world.corp_event("cancel_auth", second))
    assert cancel.status == "done"
    if cancel_first:
        assert ls.process(install).status == "failed"  # the code died with the cancel
    ours = world.ours()
    assert ours.status == Authorization.Status.CANCELLED
    assert ours.permanent_code_sealed == ""
    assert not world.truth().active


def test_a_cancel_repeated_in_its_second_is_a_duplicate(world):
    ls.process(world.create_auth(world.install(), world.tick()))
    world.ctl.cancel_auth(world.suite.suite_id, world.corpid)
    second = world.tick()
    assert ls.process(world.corp_event("cancel_auth", second)).result == "cancelled"
    assert ls.replay(world.corp_event("cancel_auth", second)).result == "already cancelled"


def test_a_cancel_timed_before_a_redirect_install_is_decided_by_wecom(world):
    """The redirect has our clock, not WeCom's: an earlier cancel is a tie, WeCom decides."""
    from tenants import services

    code = world.install()
    services.authorization_install(suite=world.suite, auth_code=code, source="redirect")
    ours = world.ours()
    assert ours.event_type == "redirect"
    # A cancel of an install before this one, delivered late, with an older TimeStamp.
    stale = ls.process(world.corp_event("cancel_auth", ours.event_timestamp - 30))
    assert stale.status == CallbackEvent.Status.SUPERSEDED
    world.live_with_the_truths_code()


def test_change_auth_older_than_the_install_is_superseded_and_before_any_install_ignored(world):
    early = ls.process(world.corp_event("change_auth", world.tick()))
    assert early.status == CallbackEvent.Status.IGNORED
    assert "no authorization" in early.result
    ls.process(world.create_auth(world.install(), world.tick(3)))
    stale = ls.process(world.corp_event("change_auth", world.ts - 1))
    assert stale.status == CallbackEvent.Status.SUPERSEDED
    fresh = ls.process(world.corp_event("change_auth", world.tick()))
    assert fresh.status == "done"
    assert world.ours().change_timestamp == world.ts
    older_change = ls.process(world.corp_event("change_auth", world.ts - 1))
    assert older_change.status == CallbackEvent.Status.SUPERSEDED


def test_a_replayed_reset_older_than_a_reinstall_changes_nothing(world):
    template = world.platform.template
    ls.process(world.create_auth(world.install(template), world.tick(), suite=template))
    reset = world.ctl.reset_permanent_code(template.suite_id, world.corpid)
    xml = ls.reset_xml(template.suite_id, reset["auth_code"], world.tick())
    reset_row = ls.process(ls.deliver(world.client, template, xml))
    assert reset_row.status == "done"
    assert world.ours(template).permanent_code == reset["new_permanent_code"]
    world.ctl.cancel_auth(template.suite_id, world.corpid)
    ls.process(world.corp_event("cancel_auth", world.tick(), suite=template))
    ls.process(world.create_auth(world.install(template), world.tick(), suite=template))
    replayed = ls.replay(reset_row)
    assert replayed.status == CallbackEvent.Status.SUPERSEDED
    world.live_with_the_truths_code(template)
