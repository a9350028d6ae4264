"""tenants/selectors.py: the stale-ticket rule has one threshold, read the same way twice."""

from datetime import UTC
from datetime import datetime

import pytest

from ops import selectors as ops_selectors
from tenants import selectors
from tenants.models import SUITE_TICKET_STALE_AFTER
from tenants.models import Suite
from tests.tenants.factories import make_provider
from tests.tenants.factories import make_suite
from wecom_provider import health


@pytest.mark.django_db
def test_the_stale_filter_and_the_row_check_agree_to_the_second():
    now = datetime(2026, 12, 7, 12, 0, 0, 500_000, tzinfo=UTC)  # half a second: rounding
    limit = int(SUITE_TICKET_STALE_AFTER.total_seconds())
    provider = make_provider()
    ages = [None, 0, limit - 1, limit, limit + 1, 10 * limit]
    suites = []
    for n, age in enumerate(ages):
        suite = make_suite(provider, suite_id=f"wwstale{n}")
        stamp = None if age is None else int(now.timestamp()) - age
        Suite.objects.filter(pk=suite.pk).update(suite_ticket_timestamp=stamp)
        suite.refresh_from_db()
        suites.append(suite)
    by_row = {s.suite_id for s in suites if s.ticket_is_stale(now=now)}
    by_filter = set(
        selectors.suites_with_stale_ticket(now=now)
        .filter(pk__in=[s.pk for s in suites])
        .values_list("suite_id", flat=True)
    )
    assert by_filter == by_row
    # Never a ticket, and the ones older than the threshold: stale; the rest fresh. At
    # half past the second, a ticket stamped exactly `limit` seconds before the second
    # is limit + 0.5 s old: stale; one stamped a second later (limit - 0.5 s) is not.
    assert by_row == {"wwstale0", "wwstale3", "wwstale4", "wwstale5"}
    assert ops_selectors.suites_with_stale_ticket(now=now) == len(by_row)


@pytest.mark.django_db
def test_readyz_lists_the_suites_the_selector_calls_stale():
    fresh = make_suite(make_provider(), suite_id="wwfreshticket")
    Suite.objects.filter(pk=fresh.pk).update(
        suite_ticket_timestamp=int(datetime.now(tz=UTC).timestamp())
    )
    stale = make_suite(make_provider(), suite_id="wwneverticket")
    listed = health.stale_suite_tickets()
    assert stale.suite_id in listed
    assert fresh.suite_id not in listed
    assert listed == sorted(selectors.suites_with_stale_ticket().values_list("suite_id", flat=True))
