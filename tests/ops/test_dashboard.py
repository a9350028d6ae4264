"""The ops dashboard in the admin: who may see it, what it shows, where each figure leads."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from callbacks.models import CallbackEvent
from callbacks.models import CallbackRejection
from tests.ops.scenario import Day
from tests.tenants.factories import make_authorization

DASHBOARD = "/admin/ops/dashboard/"
FIGURE_LINK = re.compile(
    r'<a class="ops-(?:figure|count)[^"]*" href="([^"]+)"[^>]*data-rows="(\d+)"'
)


def figure_links(page: str) -> list[tuple[str, int]]:
    return [(html.unescape(href), int(rows)) for href, rows in FIGURE_LINK.findall(page)]


def figure(page: str, label: str) -> str:
    """Return the value shown on the figure card with ``label``."""
    match = re.search(
        r'<span class="ops-value">([^<]*)</span>\s*<span class="ops-label">'
        + re.escape(html.escape(label))
        + "</span>",
        page,
    )
    assert match, label
    return match.group(1).strip()


def rejected_total() -> int:
    # The scenario's junk, plus the simulator's first pushes if they beat the suites'
    # registration (unknown_route).
    return CallbackRejection.objects.aggregate(n=Sum("count"))["n"] or 0


def rows_behind(client: Client, href: str) -> int:
    """Return how many rows the admin changelist at ``href`` counts."""
    response = client.get(href)
    assert response.status_code == 200, (href, response.status_code)
    changelist = response.context["cl"]
    if changelist.model._meta.model_name == "callbackrejection":
        # One row per minute, endpoint and reason: the figure is the sum of the counters.
        return sum(row.count for row in changelist.queryset)
    return changelist.result_count


# --- access -----------------------------------------------------------------------------------


def test_the_dashboard_is_for_staff_only(db, plain_static, django_user_model, admin_http):
    assert reverse("admin:ops_dashboard") == DASHBOARD
    anonymous = Client().get(DASHBOARD)
    assert anonymous.status_code == 302
    assert urlsplit(anonymous["Location"]).path == reverse("admin:login")

    member = django_user_model.objects.create_user("member", password="a long password 42")
    client = Client()
    client.force_login(member)
    assert client.get(DASHBOARD).status_code == 302

    response = admin_http.get(DASHBOARD)
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_the_admin_index_links_to_the_dashboard_and_still_lists_the_apps(db, admin_http):
    page = admin_http.get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in page
    assert "Operations dashboard" in page
    assert reverse("admin:callbacks_callbackevent_changelist") in page  # the app list is kept


def test_an_empty_platform_renders(db, admin_http):
    response = admin_http.get(DASHBOARD)
    assert response.status_code == 200
    page = response.content.decode()
    assert "No suite registered yet" in page
    assert figure(page, "failed (24 h)") == "0"
    assert figure(page, "p99 ack latency (24 h)") == "—"
    assert page.count('class="pygal-chart"') == 4  # inbox, rejections, latency, app orders


# --- the scenario -------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_figure_is_the_row_count_of_the_admin_page_it_links_to(day: Day, admin_http):
    page = admin_http.get(DASHBOARD).content.decode()
    links = figure_links(page)
    assert len(links) >= 25
    for href, rows in links:
        assert urlsplit(href).path.startswith("/admin/"), href
        assert rows_behind(admin_http, href) == rows, href

    # What the scenario did shows where an operator looks first.
    assert figure(page, "failed (24 h)") == "1"
    assert figure(page, "rejected (24 h)") == str(rejected_total())
    assert figure(page, "backlog (pending now)") == "0"
    assert figure(page, "suites with a stale ticket") == "0"
    assert figure(page, "token refreshes failing") == "1"  # the dissolved corp's token
    assert figure(page, "orders awaiting payment") == "1"
    received = CallbackEvent.objects.count()
    assert figure(page, "received (24 h)") == str(received)
    assert figure(page, "p99 ack latency (24 h)").endswith(" ms")
    for status, count in (("active", 1), ("suspended", 1), ("cancelled", 1)):
        href = reverse("admin:tenants_authorization_changelist") + f"?status__exact={status}"
        assert (href, count) in links, status
    for reason, count in day.rejected.items():  # the junk this scenario posted, at least
        assert any(f"reason={reason}" in href and rows >= count for href, rows in links), reason


@pytest.mark.slow
def test_the_inbox_chart_bars_link_to_the_callbacks_they_count(day: Day, admin_http):
    page = admin_http.get(DASHBOARD).content.decode()
    chart = page[page.index('id="ops-chart-inbox"') : page.index('id="ops-chart-rejections"')]
    hrefs = [html.unescape(h) for h in re.findall(r'xlink:href="([^"]+)"', chart)]
    assert hrefs
    # Every stored callback is in exactly one bar (its hour, its current status).
    assert sum(rows_behind(admin_http, href) for href in hrefs) == CallbackEvent.objects.count()
    failed_bars = [h for h in hrefs if "status__exact=failed" in h]
    assert len(failed_bars) == 1
    assert rows_behind(admin_http, failed_bars[0]) == 1

    start, end = page.index('id="ops-chart-rejections"'), page.index('id="ops-chart-latency"')
    rejection_hrefs = [
        html.unescape(h) for h in re.findall(r'xlink:href="([^"]+)"', page[start:end])
    ]
    assert sum(rows_behind(admin_http, h) for h in rejection_hrefs) == rejected_total()

    # Latency dots open that hour's callbacks, slowest first.
    start = page.index('id="ops-chart-latency"')
    latency = page[start : page.index("</figure>", start)]
    dots = [html.unescape(h) for h in re.findall(r'xlink:href="([^"]+)"', latency)]
    assert dots
    assert sum(rows_behind(admin_http, h) for h in dots) == CallbackEvent.objects.count()
    slowest = admin_http.get(dots[-1]).context["cl"].result_list
    acks = [row.ack_ms for row in slowest if row.ack_ms is not None]
    assert acks == sorted(acks, reverse=True)


@pytest.mark.slow
def test_the_page_loads_nothing_from_elsewhere_and_runs_no_chart_script(day: Day, admin_http):
    page = admin_http.get(DASHBOARD).content.decode()
    content = page[page.index('id="content-main"') : page.index("<footer")]
    assert "<script" not in content
    for attribute, url in re.findall(r'\b(src|href|xlink:href)="([^"]*)"', page):
        assert url.startswith(("/", "#", "data:")), (attribute, url)
    assert "kozea.github.io" not in page
    assert "@import" not in page


def test_the_number_of_queries_does_not_grow_with_the_data(db, admin_http):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_http.get(DASHBOARD).status_code == 200
        return len(captured)

    make_authorization()
    few = queries()
    for _ in range(3):
        make_authorization()
    now = timezone.now()
    for n in range(40):
        CallbackEvent.objects.create(
            endpoint="command",
            route_id="wwsuite",
            receive_id="wwsuite",
            info_type="suite_ticket",
            dedupe_key=f"query-count-{n}",
            payload_sealed="",
            status=["done", "failed", "pending"][n % 3],
            received_at=now - timedelta(hours=n % 20),
            ack_ms=float(n),
        )
    assert queries() == few
    assert few <= 22  # 17 for the platform's sections, 5 for the paid apps' (figures, chart, lists)
