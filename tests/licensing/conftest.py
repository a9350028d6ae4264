"""Fixtures for license tests: authorized corps, the buyer, parsed callback pushes, a poller.

The simulator (``platform``) runs over real HTTP. Callbacks are not delivered (no
callback base): tests read the plaintext XML the simulator recorded for each push,
parse it with the protocol library and call the handlers directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from licensing import services
from licensing import tasks
from licensing.handlers import HANDLERS
from tenants.models import Authorization
from tenants.services import authorization_install
from wecom.messages import parse_event


def install(platform, ctl, corpid: str, suite=None) -> Authorization:
    """Install ``suite`` (the third-party one by default) in the simulator and the platform."""
    suite = suite or platform.suite
    answer = ctl.install(suite.suite_id, corpid, push=False)
    return authorization_install(suite=suite, auth_code=answer["auth_code"], source="callback")


@pytest.fixture
def ctl(platform):
    control = platform.control
    yield control
    control.close()


@pytest.fixture
def buyer(platform) -> str:
    return platform.sandbox.config["buyers"][0]


@pytest.fixture
def auth(platform, ctl) -> Authorization:
    return install(platform, ctl, platform.corps[0]["corpid"])


@pytest.fixture
def corp(auth):
    return auth.corp


@pytest.fixture
def users(platform) -> list[str]:
    return [u["userid"] for u in platform.corps[0]["users"]]


class Pushes:
    """The simulator's push log, read incrementally and parsed into events."""

    def __init__(self, ctl) -> None:
        self.ctl = ctl
        self.last_id = max((p["id"] for p in ctl.pushes()), default=0)

    def new(self, info_type: str | None = None) -> list:
        records = self.ctl.pushes(since_id=self.last_id)
        if records:
            self.last_id = max(r["id"] for r in records)
        return [
            parse_event(r["payload"])
            for r in records
            if info_type is None or r["info_type"] == info_type
        ]


@pytest.fixture
def pushes(ctl) -> Pushes:
    return Pushes(ctl)


def dispatch(event):
    """Run the licensing handler for ``event`` as the callbacks dispatcher would."""
    return HANDLERS[event.info_type](event)


@dataclass
class Poller:
    """Plays beat + worker: claims due orders as of ``ahead`` from now and syncs them."""

    def run(self, *, ahead: timedelta = timedelta(days=2)) -> list[int]:
        claimed = services.license_orders_claim_due(now=timezone.now() + ahead)
        for order_id in claimed:
            tasks.order_sync(order_id)
        return claimed


@pytest.fixture
def poller() -> Poller:
    return Poller()


def truth(ctl, order_id: str) -> dict:
    """Return the simulator's order (the ground truth)."""
    return next(o for o in ctl.state()["orders"] if o["order_id"] == order_id)
