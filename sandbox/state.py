"""SandboxState: everything the simulated WeCom knows, behind one lock.

One re-entrant lock guards all of it. The simulator is a test double, not a
throughput engine: a single lock makes every API call atomic, so tests see the same
serialisable behaviour WeCom's (much more elaborate) storage gives.
"""

from __future__ import annotations

import collections
import itertools
import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sandbox import config as config_mod
from sandbox import licensing
from sandbox.clock import SimClock
from sandbox.directory import CorpData
from sandbox.faults import Fault
from sandbox.models import ActiveCode
from sandbox.models import AppOrder
from sandbox.models import AuthCode
from sandbox.models import Authorization
from sandbox.models import Corp
from sandbox.models import JsTicket
from sandbox.models import LoginCode
from sandbox.models import NewOrderJob
from sandbox.models import OAuthCode
from sandbox.models import Order
from sandbox.models import PayJob
from sandbox.models import PreAuthCode
from sandbox.models import Provider
from sandbox.models import RenewJob
from sandbox.models import Suite
from sandbox.models import SuiteTicket
from sandbox.models import Token
from sandbox.models import UserTicket
from sandbox.models import akey
from sandbox.models import from_dict

REQUEST_LOG_MAX = 100_000
PUSH_LOG_MAX = 20_000

# Collections saved in a snapshot: attribute name -> record class.
_SNAPSHOT_DICTS = {
    "auths": Authorization,
    "tokens": Token,
    "pre_auth_codes": PreAuthCode,
    "auth_codes": AuthCode,
    "oauth_codes": OAuthCode,
    "user_tickets": UserTicket,
    "login_codes": LoginCode,
    "js_tickets": JsTicket,
    "orders": Order,
    "codes": ActiveCode,
    "renew_jobs": RenewJob,
    "new_order_jobs": NewOrderJob,
    "pay_jobs": PayJob,
    "app_orders": AppOrder,
}


class SandboxState:
    """All simulator state. Take `lock` around every read-modify-write."""

    def __init__(
        self,
        scenario: config_mod.Scenario,
        *,
        callback_base: str | None = None,
        ticket_interval: float = 600,
        clock: SimClock | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock or SimClock()
        self.callback_base = callback_base.rstrip("/") if callback_base else None
        self.ticket_interval = ticket_interval
        self.provider: Provider = scenario.provider
        self.settings: config_mod.Settings = scenario.settings
        self.buyers: list[str] = scenario.buyers
        self.suites: dict[str, Suite] = {s.suite_id: s for s in scenario.suites}
        self.corps: dict[str, Corp] = {c.corpid: c for c in scenario.corps}
        self.auths: dict[str, Authorization] = {}
        self.trials: dict[str, float] = {}  # akey -> first install (never reset, §3)
        self.tokens: dict[str, Token] = {}
        self.current_tokens: dict[str, str] = {}  # "kind:subject" -> token value
        self.wrong_secrets: dict[str, list[float]] = {}  # client ip -> gettoken failures
        self.ip_bans: dict[str, float] = {}  # client ip -> banned until (sim clock)
        self.tickets: dict[str, list[SuiteTicket]] = {}
        self.pre_auth_codes: dict[str, PreAuthCode] = {}
        self.auth_codes: dict[str, AuthCode] = {}
        self.oauth_codes: dict[str, OAuthCode] = {}
        self.user_tickets: dict[str, UserTicket] = {}
        self.login_codes: dict[str, LoginCode] = {}
        self.js_tickets: dict[str, JsTicket] = {}
        self.orders: dict[str, Order] = {}
        self.codes: dict[str, ActiveCode] = {}  # ckey -> code
        self.renew_jobs: dict[str, RenewJob] = {}
        self.new_order_jobs: dict[str, NewOrderJob] = {}
        self.pay_jobs: dict[str, PayJob] = {}
        self.app_orders: dict[str, AppOrder] = {}  # paid-app orders (§13) by orderid
        self.edition_sweep_at = 0.0  # next scan for trials / paid terms that ran out
        self.last_transfer: dict[str, float] = {}  # "corpid|userid" -> last handover time
        self.next_agentid = 1000001
        self.faults: list[Fault] = []
        self.fault_ids = itertools.count(1)
        self.requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_MAX)
        self.request_ids = itertools.count(1)
        self.pushes: collections.deque = collections.deque(maxlen=PUSH_LOG_MAX)
        self.push_ids = itertools.count(1)
        self.verifications: list[dict[str, Any]] = []
        # HTTP requests to anything but /sandbox (every path, known or not).
        self.http_hits = 0
        # Corp APIs (api_corp.py): not snapshotted, like the logs.
        self.corp_data = CorpData()
        # get_app_license_info's license_check_time: enforcement began when we started.
        if self.settings.license_check_time is None:
            self.settings.license_check_time = self.clock.ts()
        # Wired by the server: the push worker and the sim-clock scheduler.
        self.pusher = None
        self.scheduler = None

    # ----- lookups -------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def ts(self) -> int:
        return self.clock.ts()

    def suite(self, suite_id: str | None) -> Suite | None:
        return self.suites.get(suite_id or "")

    def corp(self, corpid: str | None) -> Corp | None:
        """Return the corp for an encrypted or a plaintext corpid (§2: both accepted)."""
        if not corpid:
            return None
        corp = self.corps.get(corpid)
        if corp is None:
            corp = next((c for c in self.corps.values() if c.plain_corpid == corpid), None)
        return corp

    def auth(self, suite_id: str, corpid: str) -> Authorization | None:
        return self.auths.get(akey(suite_id, corpid))

    def active_auths(self, corpid: str) -> list[Authorization]:
        return [a for a in self.auths.values() if a.corpid == corpid and a.active]

    def latest_ticket(self, suite_id: str) -> str | None:
        tickets = self.tickets.get(suite_id) or []
        return tickets[-1].ticket if tickets else None

    def callback_url(self, channel: str, suite_id: str | None = None) -> str | None:
        """Return where a callback of `channel` (command | data | system) is POSTed."""
        if channel == "system":
            if self.provider.system_url:
                return self.provider.system_url
            base = self.callback_base
            return f"{base}/callbacks/provider/{self.provider.corpid}/" if base else None
        suite = self.suite(suite_id)
        if suite is None:
            return None
        override = suite.command_url if channel == "command" else suite.data_url
        if override:
            return override
        if not self.callback_base:
            return None
        return f"{self.callback_base}/callbacks/suite/{suite.suite_id}/{channel}/"

    # ----- views ---------------------------------------------------------------------

    def config_view(self) -> dict[str, Any]:
        """Return the effective scenario, secrets included (GET /sandbox/config)."""
        return {
            "provider": {
                **asdict(self.provider),
                "system_url": self.callback_url("system"),
            },
            "suites": [
                {
                    **asdict(s),
                    "command_url": self.callback_url("command", s.suite_id),
                    "data_url": self.callback_url("data", s.suite_id),
                    "suite_ticket": self.latest_ticket(s.suite_id),
                }
                for s in self.suites.values()
            ],
            "corps": [
                {**asdict(c), "users": [asdict(u) for u in c.users.values()]}
                for c in self.corps.values()
            ],
            "buyers": list(self.buyers),
            "settings": self.settings.as_dict(),
            "callback_base": self.callback_base,
            "ticket_interval": self.ticket_interval,
            "now": self.ts(),
        }

    def state_view(self) -> dict[str, Any]:
        """Return the 'truth' tests compare the platform with (GET /sandbox/state)."""
        for code in self.codes.values():
            licensing.refresh_code(self, code)
        return {
            "now": self.ts(),
            "clock_offset": self.clock.offset,
            "auths": [asdict(a) for a in self.auths.values()],
            "trials": dict(self.trials),
            "tickets": {k: [asdict(t) for t in v] for k, v in self.tickets.items()},
            "orders": [asdict(o) for o in self.orders.values()],
            "codes": [asdict(c) for c in self.codes.values()],
            "auth_codes": [asdict(c) for c in self.auth_codes.values()],
            "pre_auth_codes": [asdict(c) for c in self.pre_auth_codes.values()],
            "renew_jobs": [asdict(j) for j in self.renew_jobs.values()],
            "new_order_jobs": [asdict(j) for j in self.new_order_jobs.values()],
            "pay_jobs": [asdict(j) for j in self.pay_jobs.values()],
            "app_orders": [asdict(o) for o in self.app_orders.values()],
            "auto_active": {c.corpid: c.auto_active for c in self.corps.values()},
            "dissolved": {c.corpid: c.dissolved for c in self.corps.values() if c.dissolved},
            "tokens": [asdict(t) for t in self.tokens.values()],
        }

    # ----- snapshot ------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-ready dump of the durable state (not logs, faults or pushes)."""
        data: dict[str, Any] = {
            "version": 1,
            "clock_offset": self.clock.offset,
            "provider": asdict(self.provider),
            "suites": [asdict(s) for s in self.suites.values()],
            "corps": [asdict(c) for c in self.corps.values()],
            "buyers": list(self.buyers),
            "settings": self.settings.as_dict(),
            "trials": dict(self.trials),
            "current_tokens": dict(self.current_tokens),
            "tickets": {k: [asdict(t) for t in v] for k, v in self.tickets.items()},
            "last_transfer": dict(self.last_transfer),
            "next_agentid": self.next_agentid,
        }
        for name in _SNAPSHOT_DICTS:
            data[name] = {k: asdict(v) for k, v in getattr(self, name).items()}
        return data

    def restore(self, data: dict[str, Any]) -> None:
        """Load a snapshot() dump, replacing the scenario and all durable state."""
        self.provider = from_dict(Provider, data["provider"])
        self.suites = {s["suite_id"]: from_dict(Suite, s) for s in data["suites"]}
        self.corps = {c["corpid"]: Corp.load(c) for c in data["corps"]}
        self.buyers = list(data["buyers"])
        self.settings = config_mod.Settings()
        self.settings.update(data["settings"])
        self.trials = dict(data["trials"])
        self.current_tokens = dict(data["current_tokens"])
        self.tickets = {
            k: [from_dict(SuiteTicket, t) for t in v] for k, v in data["tickets"].items()
        }
        self.last_transfer = dict(data["last_transfer"])
        self.next_agentid = int(data["next_agentid"])
        for name, cls in _SNAPSHOT_DICTS.items():
            # .get: a snapshot from before a collection existed (app_orders) loads empty.
            setattr(self, name, {k: from_dict(cls, v) for k, v in data.get(name, {}).items()})
        # The offset only grows: a snapshot taken after clock/advance keeps its future.
        delta = float(data.get("clock_offset", 0)) - self.clock.offset
        if delta > 0:
            self.clock.advance(delta)

    def save(self, path: str | Path) -> None:
        with self.lock:
            data = self.snapshot()
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)  # atomic: a crash never leaves half a snapshot

    def load(self, path: str | Path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        with self.lock:
            self.restore(data)
