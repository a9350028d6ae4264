"""Expiry warnings, the per-corp summary, the reconcile command, tasks and beat."""

from __future__ import annotations

import io
from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from licensing import selectors
from licensing import services
from licensing import tasks
from licensing.models import LicenseOrder
from tenants.models import FeedEvent
from tests.licensing.conftest import dispatch


def _activated(platform, ctl, pushes, corp, buyer, users):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=3, months=1)
    ctl.pay_order(order.order_id)
    for event in pushes.new("license_pay_success"):
        dispatch(event)
    return services.license_account_activate(corp=corp, userid=users[0])


def test_expiring_accounts_are_published_once(platform, ctl, pushes, corp, buyer, users, settings):
    account = _activated(platform, ctl, pushes, corp, buyer, users)
    # A 1-month license expires in 31 days: outside the default 30-day warning.
    assert services.license_expiry_scan() == 0
    settings.LICENSE_EXPIRY_WARNING_DAYS = 40
    assert list(selectors.license_accounts_expiring()) == [account]
    assert services.license_expiry_scan() == 1
    assert tasks.expiry_scan() == 0  # once per account and expiry date
    [entry] = FeedEvent.objects.filter(type="license.expiring")
    assert entry.data["userid"] == users[0]
    assert entry.data["days_left"] in (30, 31)


def test_corp_summary(platform, ctl, pushes, corp, buyer, users, settings):
    _activated(platform, ctl, pushes, corp, buyer, users)
    services.license_app_info_sync(corp=corp, suite=platform.suite)
    figures = selectors.license_corp_summary(corp=corp)
    assert (figures.bought, figures.active, figures.free, figures.expiring) == (3, 1, 2, 0)
    assert figures.trial_end > timezone.now() + timedelta(days=89)
    later = selectors.license_corp_summary(corp=corp, now=timezone.now() + timedelta(days=5))
    assert later.expiring == 1


def test_reconcile_command_prints_plain_progress(platform, ctl, corp, buyer):
    order_id = services.license_order_create(
        corp=corp, buyer_userid=buyer, base_count=1, months=1
    ).order_id
    LicenseOrder.objects.filter(order_id=order_id).delete()  # the mirror lost it
    out = io.StringIO()
    call_command("license_reconcile", "--days", "62", stdout=out)
    text = out.getvalue()
    assert "orders: 3/3 (" in text  # 62 days + 1 day margin → 3 windows, plain lines
    assert "accounts: 1/1" in text
    assert "orders_new=1" in text
    assert "\r" not in text
    assert LicenseOrder.objects.filter(order_id=order_id).exists()


def test_poll_claims_are_exclusive(platform, corp, buyer):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    later = timezone.now() + timedelta(hours=1)
    assert services.license_orders_claim_due(now=later) == [order.pk]
    # A second beat (or a double-fired one) within the lease gets nothing.
    assert services.license_orders_claim_due(now=later) == []
    assert services.license_orders_claim_due(now=later + services.POLL_LEASE) == [order.pk]


def test_task_of_a_deleted_order_is_a_no_op(db):
    tasks.order_sync(123456)
    tasks.new_order_job_sync(123456)


def test_beat_schedule_has_the_license_entries():
    from wecom_provider.celery import SCHEDULE
    from wecom_provider.celery import app

    names = {name: task for name, task, _ in SCHEDULE}
    assert names["license-orders-poll"] == "licensing.orders_poll_due"
    assert names["license-reconcile"] == "licensing.reconcile"
    assert names["license-expiry-scan"] == "licensing.expiry_scan"
    for task in ("licensing.orders_poll_due", "licensing.reconcile", "licensing.expiry_scan"):
        assert task in app.tasks
    assert tasks.order_sync.acks_late
    assert not tasks.reconcile.acks_late
