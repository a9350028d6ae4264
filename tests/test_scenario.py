"""The whole platform against the simulator, on real ports, with a real Celery worker.

ticket push → suite token → install (both entry paths) → permanent code → corp token →
license order paid → accounts activated → cancel. Every callback travels encrypted over
HTTP into the inbox and is processed by the worker.
"""

from urllib.parse import urlsplit

import httpx
import pytest
from django.db import connection

from callbacks.models import CallbackEvent
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from licensing.services import license_account_activate
from licensing.services import license_order_create
from tenants import credentials
from tenants.models import Authorization
from tenants.models import Suite
from tests.support import celery_worker
from tests.support import django_env
from tests.support import wait_until


def worker_env(live_platform) -> dict[str, str]:
    db = connection.settings_dict
    return django_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        WECOM_API_BASE=live_platform.sandbox.base_url,
    )


@pytest.mark.slow
def test_full_scenario_through_callbacks_and_a_real_worker(live_platform, live_server):
    sandbox = live_platform.sandbox
    control = live_platform.control
    suite = live_platform.suite
    corp_a, corp_b = live_platform.corps[0]["corpid"], live_platform.corps[1]["corpid"]
    with celery_worker(env=worker_env(live_platform), concurrency=2):
        # 1. WeCom pushes suite tickets; the worker stores them; a suite token follows.
        control.push_ticket(suite.suite_id)
        assert sandbox.wait_pushes(10)
        newest = sandbox.state.tickets[suite.suite_id][-1].ticket
        wait_until(
            lambda: Suite.objects.get(pk=suite.pk).suite_ticket == newest,
            timeout=30,
            message="the pushed ticket to be stored",
        )
        assert credentials.token_get(Suite.objects.get(pk=suite.pk)).value

        # 2a. Install from the provider's site (redirect entry).
        start = httpx.get(f"{live_server.url}/install/{suite.suite_id}/?state=web1")
        assert start.status_code == 302
        wecom = httpx.get(start.headers["location"] + f"&corpid={corp_a}")
        assert wecom.status_code == 302
        back = wecom.headers["location"]
        assert urlsplit(back).netloc == urlsplit(live_server.url).netloc
        done = httpx.get(back)
        assert done.status_code == 200, done.text

        # 2b. Install from the marketplace (create_auth callback entry).
        control.install(suite.suite_id, corp_b, state="qr1")
        assert sandbox.wait_pushes(10)
        wait_until(
            lambda: Authorization.objects.filter(corp__corpid=corp_b, status="active").exists(),
            timeout=30,
            message="create_auth to be processed",
        )
        for corpid in (corp_a, corp_b):
            authorization = Authorization.objects.get(corp__corpid=corpid, suite=suite)
            assert authorization.permanent_code_sealed.startswith("v1:")
            assert credentials.token_get(authorization).expires_in() > 300

        # 3. A license order, paid in WeCom's console, confirmed by license_pay_success.
        authorization = Authorization.objects.select_related("corp").get(corp__corpid=corp_b)
        buyer = sandbox.config["buyers"][0]
        order = license_order_create(corp=authorization.corp, buyer_userid=buyer, base_count=2)
        control.pay_order(order.order_id)
        assert sandbox.wait_pushes(10)
        wait_until(
            lambda: (
                LicenseOrder.objects.get(pk=order.pk).status == OrderStatus.PAID
                and LicenseAccount.objects.filter(order=order).count() == 2
            ),
            timeout=30,
            message="the order to be paid and its codes synced",
        )

        # 4. Activate a member.
        userid = live_platform.corps[1]["users"][0]["userid"]
        account = license_account_activate(corp=authorization.corp, userid=userid)
        assert account.userid == userid

        # 5. The corp cancels: cancel_auth revokes everything, history kept.
        control.cancel_auth(suite.suite_id, corp_b)
        assert sandbox.wait_pushes(10)
        wait_until(
            lambda: Authorization.objects.get(pk=authorization.pk).status == "cancelled",
            timeout=30,
            message="cancel_auth to be processed",
        )
        # A row's final status is written after the effects waited for above: let the
        # worker finish before it is stopped (SIGTERM ends a task in flight).
        wait_until(
            lambda: not CallbackEvent.objects.filter(status__in=["pending", "processing"]).exists(),
            timeout=30,
            message="every callback to be finished",
        )
    statuses = set(CallbackEvent.objects.values_list("status", flat=True))
    assert statuses <= {"done", "ignored"}, statuses
    assert not CallbackEvent.objects.filter(status="failed").exists()
    history = list(
        Authorization.objects.get(pk=authorization.pk).history.values_list("action", flat=True)
    )
    assert "cancelled" in history
