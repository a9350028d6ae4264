"""The dashboard's paid-app section: figures are the rows behind their links, the chart's
bars open the orders they count, the tables list trials ending and seat overruns."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from licensing.app_orders.models import AppOrder
from licensing.app_orders.models import TenantEdition
from tenants.models import Authorization
from tests.ops.test_dashboard import DASHBOARD
from tests.ops.test_dashboard import figure
from tests.ops.test_dashboard import figure_links
from tests.ops.test_dashboard import rows_behind
from tests.tenants.factories import make_authorization
from tests.tenants.factories import make_suite

pytestmark = pytest.mark.django_db


@dataclass
class PaidWorld:
    soon: Authorization  # trial ends in 3 days
    later: Authorization  # trial ends in 20 days
    over: Authorization  # over its seat limit


def edition(authorization, *, status: int, days: float | None = None, **extra) -> TenantEdition:
    end = timezone.now() + timedelta(days=days) if days is not None else None
    return TenantEdition.objects.create(
        authorization=authorization,
        edition_id="ESPRO",
        edition_name="专业版",
        app_status=status,
        user_limit=50,
        expired_time=end,
        read_at=timezone.now(),
        **extra,
    )


@pytest.fixture
def paid_world() -> PaidWorld:
    suite = make_suite()
    soon, later, far, over, paid = (make_authorization(suite) for _ in range(5))
    gone = make_authorization(suite, status=Authorization.Status.CANCELLED)
    gone_over = make_authorization(suite, status=Authorization.Status.CANCELLED)
    edition(soon, status=1, days=3)
    edition(later, status=1, days=20)
    edition(far, status=1, days=40)
    edition(gone, status=1, days=2)  # a cancelled tenant's trial: not ops' concern
    edition(over, status=6, days=200)
    edition(gone_over, status=7, days=200)
    edition(paid, status=3, days=300)
    now = timezone.now()
    for n, (status, age) in enumerate([(0, 0), (0, 1), (1, 1), (5, 3), (1, 40)]):
        AppOrder.objects.create(
            order_id=f"AODASH{n}",
            suite=suite,
            corp=paid.corp,
            status=status,
            order_time=now - timedelta(days=age),
        )
    return PaidWorld(soon=soon, later=later, over=over)


def test_the_paid_app_figures_are_the_rows_behind_them(paid_world, admin_http):
    page = admin_http.get(DASHBOARD).content.decode()
    assert figure(page, "app orders awaiting payment") == "2"
    assert figure(page, "trials ending within 7 days") == "1"
    assert figure(page, "trials ending within 30 days") == "2"
    assert figure(page, "editions over their seat limit") == "1"
    section = page[page.index('id="ops-paid-apps"') : page.index('id="ops-licenses"')]
    links = figure_links(section)
    assert len(links) == 4
    for href, rows in links:
        assert rows_behind(admin_http, href) == rows, href


def test_the_tables_list_trials_soonest_first_and_the_overrun(paid_world, admin_http):
    page = admin_http.get(DASHBOARD).content.decode()
    trials = re.findall(r'data-trial-corpid="([^"]+)"', page)
    assert trials == [paid_world.soon.corp.corpid, paid_world.later.corp.corpid]
    assert re.findall(r'data-over-corpid="([^"]+)"', page) == [paid_world.over.corp.corpid]


def test_the_chart_bars_open_the_orders_they_count(paid_world, admin_http):
    page = admin_http.get(DASHBOARD).content.decode()
    start = page.index('id="ops-chart-app-orders"')
    chart = page[start : page.index("</figure>", start)]
    hrefs = [html.unescape(h) for h in re.findall(r'xlink:href="([^"]+)"', chart)]
    # Four orders in the last 30 days, each in one bar (its day, its current status).
    assert sum(rows_behind(admin_http, href) for href in hrefs) == 4
    unpaid = [h for h in hrefs if "status__exact=0" in h]
    assert sum(rows_behind(admin_http, h) for h in unpaid) == 2
