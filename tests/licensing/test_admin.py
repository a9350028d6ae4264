"""The ops console: pages render, filters work, actions call services, no secret shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from licensing import services
from licensing.models import AccountStatus
from licensing.models import LicenseAccount
from licensing.models import LicenseBatch
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from tests.licensing.conftest import dispatch


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage used without DEBUG needs `collectstatic`; admin pages only need URLs.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def paid(platform, ctl, pushes, corp, buyer) -> LicenseOrder:
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=3, months=1)
    ctl.pay_order(order.order_id)
    for event in pushes.new("license_pay_success"):
        dispatch(event)
    order.refresh_from_db()
    return order


def changelist(model: str) -> str:
    return reverse(f"admin:licensing_{model}_changelist")


def test_pages_render_and_never_show_a_secret(admin_client, platform, paid, corp, users):
    services.license_account_activate(corp=corp, userid=users[0])
    services.license_app_info_sync(corp=corp, suite=platform.suite)
    secrets = [
        platform.sandbox.config["provider"]["provider_secret"],
        platform.suite.secret,
        platform.suite.callback_token,
        corp.authorizations.get().permanent_code,
    ]
    pages = [
        changelist("licenseorder"),
        changelist("licenseorder") + "?status__exact=1",
        changelist("licenseorder") + "?polling=due",
        changelist("licenseorder") + "?polling=settled",
        reverse("admin:licensing_licenseorder_change", args=[paid.pk]),
        changelist("licenseaccount"),
        changelist("licenseaccount") + "?type__exact=1&status__exact=2",
        changelist("licenseaccount") + "?expiry=soon",
        changelist("licenseaccount") + "?expiry=expired",
        changelist("licenseaccount") + "?invalid=yes",
        changelist("corplicensesummary"),
        changelist("licensebatch"),
        changelist("licensebatchitemerror"),
        changelist("licenserenewjob"),
        changelist("licenseneworderjob"),
        changelist("unlicensedmember") + "?resolved=no",
        changelist("applicenseinfo"),
        changelist("corplicensesettings"),
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for secret in secrets:
            assert secret not in body, url


def test_expiring_filter(admin_client, paid, corp, users, settings):
    account = services.license_account_activate(corp=corp, userid=users[0])
    response = admin_client.get(changelist("licenseaccount") + "?expiry=soon")
    assert account.active_code not in response.content.decode()  # 31 days left
    LicenseAccount.objects.filter(pk=account.pk).update(
        expire_time=timezone.now() + timedelta(days=10)
    )
    response = admin_client.get(changelist("licenseaccount") + "?expiry=soon")
    assert account.active_code in response.content.decode()


def test_summary_columns(admin_client, paid, corp, users):
    services.license_account_activate(corp=corp, userid=users[0])
    response = admin_client.get(changelist("corplicensesummary") + f"?q={corp.corpid}")
    row = response.context["cl"].result_list.get(pk=corp.pk)
    assert (row.licenses_bought, row.licenses_active, row.licenses_free) == (3, 1, 2)


def test_sync_now_and_cancel_actions(admin_client, platform, ctl, corp, buyer):
    order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=1, months=1)
    ctl.pay_order(order.order_id)  # callback lost
    response = admin_client.post(
        changelist("licenseorder"), {"action": "sync_now", "_selected_action": [order.pk]}
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID

    other = platform.corps[1]["corpid"]
    from tests.licensing.conftest import install

    second = install(platform, ctl, other).corp
    unpaid = services.license_order_create(corp=second, buyer_userid=buyer, base_count=1, months=1)
    admin_client.post(
        changelist("licenseorder"),
        {"action": "cancel", "_selected_action": [unpaid.pk, order.pk]},
    )
    unpaid.refresh_from_db()
    order.refresh_from_db()
    assert unpaid.status == OrderStatus.CANCELLED
    assert order.status == OrderStatus.PAID  # refused: not awaiting payment


def test_activate_action_asks_for_members_then_activates(admin_client, paid, corp, users):
    codes = list(LicenseAccount.objects.filter(order=paid).order_by("created_time", "active_code"))
    selected = {"action": "activate", "_selected_action": [c.pk for c in codes[:2]]}
    form = admin_client.post(changelist("licenseaccount"), selected)
    assert form.status_code == 200
    assert "Activate licenses" in form.content.decode()
    done = admin_client.post(
        changelist("licenseaccount"),
        {**selected, "apply": "1", "userids": f"{users[0]}\nnobody"},
    )
    assert done.status_code == 302
    bound = LicenseAccount.objects.filter(order=paid, status=AccountStatus.ACTIVE)
    assert list(bound.values_list("userid", flat=True)) == [users[0]]
    batch = LicenseBatch.objects.get(operation="activate")
    assert list(batch.errors.values_list("errcode", flat=True)) == [701019]


def test_mirror_rows_cannot_be_edited_by_hand(admin_client, paid):
    response = admin_client.get(reverse("admin:licensing_licenseorder_add"))
    assert response.status_code == 403
    response = admin_client.post(reverse("admin:licensing_licenseorder_delete", args=[paid.pk]))
    assert response.status_code == 403
