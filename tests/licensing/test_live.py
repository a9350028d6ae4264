"""Real encrypted callbacks from the simulator through the callbacks app into licensing."""

from __future__ import annotations

from licensing import services
from licensing.models import LicenseAccount
from licensing.models import LicenseOrder
from licensing.models import OrderStatus
from tenants.models import FeedEvent
from tests.licensing.conftest import install


def test_pay_callback_reaches_the_licensing_handler(live_platform):
    # Imported here: licensing never imports the callbacks app, only this test does.
    from callbacks.models import CallbackEvent
    from callbacks.tasks import process_callback

    ctl = live_platform.control
    try:
        corp = install(live_platform, ctl, live_platform.corps[0]["corpid"]).corp
        buyer = live_platform.sandbox.config["buyers"][0]
        order = services.license_order_create(corp=corp, buyer_userid=buyer, base_count=2, months=1)
        ctl.pay_order(order.order_id)
        assert live_platform.sandbox.wait_pushes(10)
        [push] = ctl.pushes(info_type="license_pay_success")
        assert push["status"] == "delivered", push
        # The view stored it and answered "success"; the worker's task runs the handler.
        [row] = CallbackEvent.objects.filter(info_type="license_pay_success")
        process_callback(row.pk)
        row.refresh_from_db()
        assert row.status == CallbackEvent.Status.DONE, row.last_error
        order.refresh_from_db()
        assert order.status == OrderStatus.PAID
        assert LicenseAccount.objects.filter(order=order).count() == 2
        assert FeedEvent.objects.filter(type="license.paid").count() == 1
        process_callback(row.pk)  # a redelivered task finds the row done: nothing reruns
        assert LicenseOrder.objects.filter(order_id=order.order_id).count() == 1
    finally:
        ctl.close()
