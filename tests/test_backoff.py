"""wecom_provider/backoff.py: the one home of retry delays (issue 18)."""

import random
from datetime import timedelta

from api.gateway import forward
from callbacks.services import processing
from licensing.app_orders import services as app_order_services
from licensing.services import common
from tenants import fetching
from tenants.services import install
from webhooks import schedule
from wecom_provider.backoff import backoff
from wecom_provider.backoff import exponential
from wecom_provider.backoff import jittered


def test_exponential_doubles_from_base_and_stops_at_the_cap():
    assert [exponential(n, base=10, cap=600) for n in range(8)] == [
        10,
        20,
        40,
        80,
        160,
        320,
        600,
        600,
    ]
    assert exponential(-3, base=10, cap=600) == 10
    assert exponential(10**6, base=1, cap=5) == 5  # no overflow


def test_jitter_stays_in_its_bounds_and_spreads():
    rng = random.Random(7)
    values = [jittered(100, low=0.8, high=1.2, rng=rng) for _ in range(500)]
    assert min(values) >= 80
    assert max(values) <= 120
    assert max(values) - min(values) > 30  # spread, not one value


def test_backoff_is_a_jittered_exponential():
    delays = [backoff(3, base=10, cap=600, jitter=(0.9, 1.1)) for _ in range(200)]
    assert all(timedelta(seconds=72) <= d <= timedelta(seconds=88) for d in delays)


def test_every_retry_of_the_platform_uses_it():
    # Callback rows: 10 s doubling to 10 min, ±20 %.
    assert all(
        timedelta(seconds=0.8 * 10 * 2**n)
        <= processing._backoff(n + 1)
        <= timedelta(seconds=1.2 * 10 * 2**n)
        for n in range(5)
    )
    assert processing._backoff(30) <= timedelta(seconds=720)
    # Licence polls: base × 2^attempts up to the cap, ±10 %.
    assert timedelta(seconds=54) <= common.poll_backoff(0, 60, 1800) <= timedelta(seconds=66)
    assert common.poll_backoff(40, 60, 1800) <= timedelta(seconds=1980)
    # Token fetches: 2, 4, 8 s, then minutes, +0–20 %.
    failure = fetching.Failure.SYSTEM
    assert 2 <= fetching.backoff_seconds(failure, 1) <= 2.4
    assert 8 <= fetching.backoff_seconds(failure, 3) <= 9.6
    assert 600 <= fetching.backoff_seconds(failure, 20) <= 720
    # Webhook deliveries: the table's delay, ±20 %.
    assert 4 <= schedule.next_delay(1) <= 6
    # Install follow-ups (deferred under the ceiling): 5 s doubling to a minute, ±20 %.
    assert 8 <= install.follow_up_delay(1) <= 12
    assert 48 <= install.follow_up_delay(10) <= 72
    # Paid-app orders: the licence polls' curve.
    assert app_order_services._backoff is common.poll_backoff
    # The gateway's retries of a -1: 0.1, 0.2, 0.4 s, +0–50 %.
    assert 0.1 <= forward.system_retry_delay(1) <= 0.15
    assert 0.4 <= forward.system_retry_delay(3) <= 0.6
