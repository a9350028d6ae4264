"""A small day of operations against the WeCom simulator, over real HTTP.

Used by the ops tests (dashboard, /metrics, secret leaks) and the browser tests, so each
of them looks at the data the platform really produces: tickets pushed and stored, two
installs (redirect and marketplace), a 代开发 install whose corp is later dissolved, a
paid and an unpaid license order, an activated account, a callback that fails, a few
rejected callbacks, and a cancelled tenant.

Callbacks are processed either in this process (``process_callback.apply()``, so the
Celery signals and every metric fire here) or by a real worker (``worker=True``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from callbacks.models import CallbackEvent
from callbacks.routes import routes_forget
from callbacks.tasks import process_callback
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from licensing.services import license_account_activate
from licensing.services import license_order_create
from tenants import credentials
from tenants.models import Authorization
from tenants.models import Suite
from tests.support import celery_worker
from tests.support import database_url
from tests.support import django_env
from tests.support import wait_until
from tests.tenants.lifecycle_support import run_install_follow_ups
from wecom.errors import WeComError

FAULT_ERRCODE = 60011  # "no privilege": a permanent error, the row fails for ops to replay


# --- processing the inbox ----------------------------------------------------------------------


def _due_pending() -> list[int]:
    now = timezone.now()
    return list(
        CallbackEvent.objects.filter(status=CallbackEvent.Status.PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("-priority", "received_at")
        .values_list("pk", flat=True)
    )


def process_inbox(*, timeout: float = 30.0) -> None:
    """Run every pending row through the real task in this process until none is left.

    ``apply()`` runs the task like a worker would (signals, outcome counters), here.
    """
    deadline = time.monotonic() + timeout
    while True:
        for pk in _due_pending():
            process_callback.apply(args=[pk])
        if not CallbackEvent.objects.filter(
            status__in=[CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING]
        ).exists():
            return
        if time.monotonic() > deadline:
            raise AssertionError("callbacks still pending after the deadline")
        time.sleep(0.2)  # a row waits out its retry backoff


def inbox_settled() -> bool:
    return not CallbackEvent.objects.filter(
        status__in=[CallbackEvent.Status.PENDING, CallbackEvent.Status.PROCESSING]
    ).exists()


# --- a real worker whose output we keep ----------------------------------------------------


def worker_env(platform, **overrides: str) -> dict[str, str]:
    """Environment for a worker process using this test's database and simulator."""
    return django_env(
        DATABASE_URL=database_url(connection.settings_dict),
        WECOM_API_BASE=platform.sandbox.base_url,
        **overrides,
    )


def logging_worker(*, env: dict[str, str], log_path: Path, loglevel: str = "debug"):
    """Run a real Celery worker; everything its log handlers write goes to ``log_path``."""
    return celery_worker(env=env, concurrency=2, loglevel=loglevel, log_path=log_path)


# --- the scenario ----------------------------------------------------------------------------


@dataclass
class Day:
    """What the scenario left behind, for the tests to look at."""

    redirect_corp: str  # installed from the provider's site, later cancelled
    market_corp: str  # installed from the marketplace (create_auth), active
    custom_corp: str  # 代开发 install; the corp is dissolved, so suspended
    paid_order: LicenseOrder
    unpaid_order: LicenseOrder
    failed_event: CallbackEvent
    rejected: dict[str, int] = field(default_factory=dict)
    auth_codes: list[str] = field(default_factory=list)


class Scenario:
    def __init__(self, platform, base_url: str, *, worker: bool = False) -> None:
        self.platform = platform
        self.sandbox = platform.sandbox
        self.control = platform.control
        self.base_url = base_url
        self.worker = worker
        self.http = httpx.Client(base_url=base_url, timeout=30, trust_env=False)

    def close(self) -> None:
        self.http.close()

    def settle(self, *, timeout: float = 30.0) -> None:
        """Wait for the simulator's pushes to land, then for the inbox to be processed."""
        assert self.sandbox.wait_pushes(timeout)
        if self.worker:
            wait_until(inbox_settled, timeout=timeout, message="the worker to drain the inbox")
        else:
            process_inbox(timeout=timeout)
            run_install_follow_ups()  # an install's reads follow in their own task

    def run(self) -> Day:
        platform, control = self.platform, self.control
        suite, template = platform.suite, platform.template
        corp_a, corp_b, corp_c = (corp["corpid"] for corp in platform.corps[:3])

        # 1. WeCom pushes suite tickets; a suite token follows.
        self.settle()
        # The simulator pushed its first tickets before the suites were registered: start
        # from a clean route cache in the live server (this process), whatever it saw then.
        routes_forget()
        control.push_ticket()
        self.settle()
        newest = self.sandbox.state.tickets[suite.suite_id][-1].ticket
        assert Suite.objects.get(pk=suite.pk).suite_ticket == newest
        credentials.token_get(Suite.objects.get(pk=suite.pk))

        # 2. Install from the provider's site (redirect), then from the marketplace.
        start = self.http.get(f"/install/{suite.suite_id}/?state=web1")
        assert start.status_code == 302, start.text
        wecom = httpx.get(start.headers["location"] + f"&corpid={corp_a}", trust_env=False)
        assert wecom.status_code == 302
        back = wecom.headers["location"]
        assert urlsplit(back).netloc == urlsplit(self.base_url).netloc
        done = httpx.get(back, timeout=30, trust_env=False)
        assert done.status_code == 200, done.text
        control.install(suite.suite_id, corp_b, state="qr1")
        control.install(template.suite_id, corp_c)
        self.settle()
        for suite_row, corpid in ((suite, corp_a), (suite, corp_b), (template, corp_c)):
            assert Authorization.objects.filter(
                suite=suite_row, corp__corpid=corpid, status="active"
            ).exists(), corpid

        # 3. A license order paid in WeCom's console; one account activated; an order
        #    left unpaid.
        market = Authorization.objects.select_related("corp").get(suite=suite, corp__corpid=corp_b)
        buyer = self.sandbox.config["buyers"][0]
        paid = license_order_create(corp=market.corp, buyer_userid=buyer, base_count=2)
        control.pay_order(paid.order_id)

        def paid_and_synced() -> bool:
            self.settle()
            order = LicenseOrder.objects.get(pk=paid.pk)
            return order.status == OrderStatus.PAID and order.accounts.count() == 2

        wait_until(paid_and_synced, timeout=30, message="the order to be paid and synced")
        userid = platform.corps[1]["users"][0]["userid"]
        license_account_activate(corp=market.corp, userid=userid)
        assert LicenseAccount.objects.filter(corp=market.corp, userid=userid).exists()
        redirect = Authorization.objects.select_related("corp").get(
            suite=suite, corp__corpid=corp_a
        )
        unpaid = license_order_create(corp=redirect.corp, buyer_userid=buyer, base_count=1)

        # 4. WeCom refuses one call: the change_auth callback fails for ops to replay.
        control.add_fault(endpoint="get_auth_info", errcode=FAULT_ERRCODE, times=1)
        control.change_auth(suite.suite_id, corp_b, auth_mode=1)
        self.settle()
        failed = CallbackEvent.objects.get(info_type="change_auth", corp_id=corp_b)
        assert failed.status == CallbackEvent.Status.FAILED, (failed.status, failed.last_error)

        # 5. Someone posts junk to the callback URLs: rejected, counted, nothing stored.
        rejected = self._post_junk(suite.suite_id)

        # 6. The 代开发 corp is dissolved: its token refresh fails and it is suspended.
        #    Its token is read first: with a real worker, an install's own token fetch
        #    is a follow-up task (tenants.install_follow_up) that settle() does not await.
        custom = Authorization.objects.select_related("suite", "corp").get(
            suite=template, corp__corpid=corp_c
        )
        current = credentials.token_get(custom).value
        control.dissolve_corp(corp_c)
        with contextlib.suppress(WeComError, credentials.CredentialUnavailable):
            credentials.token_get(custom, rejected=current)
        assert Authorization.objects.get(pk=custom.pk).status == "suspended"

        # 7. The redirect tenant uninstalls: cancel_auth.
        control.cancel_auth(suite.suite_id, corp_a)
        self.settle()
        assert Authorization.objects.get(pk=redirect.pk).status == "cancelled"

        return Day(
            redirect_corp=corp_a,
            market_corp=corp_b,
            custom_corp=corp_c,
            paid_order=LicenseOrder.objects.get(pk=paid.pk),
            unpaid_order=LicenseOrder.objects.get(pk=unpaid.pk),
            failed_event=CallbackEvent.objects.get(pk=failed.pk),
            rejected=rejected,
            auth_codes=[c.code for c in self.sandbox.state.auth_codes.values()],
        )

    def _post_junk(self, suite_id: str) -> dict[str, int]:
        envelope = b"<xml><ToUserName><![CDATA[x]]></ToUserName><Encrypt>abc</Encrypt></xml>"
        signed = "?msg_signature=00ff&timestamp=1&nonce=1"
        answers = [
            self.http.post(f"/callbacks/suite/{suite_id}/command/{signed}", content=envelope),
            self.http.post(f"/callbacks/suite/{suite_id}/command/{signed}", content=envelope),
            self.http.post(f"/callbacks/suite/{suite_id}/data/{signed}", content=b"not xml"),
            self.http.post(f"/callbacks/suite/wwnosuchsuite/command/{signed}", content=envelope),
        ]
        assert [a.status_code for a in answers] == [403, 403, 400, 404]
        return {"bad_signature": 2, "malformed": 1, "unknown_route": 1}
