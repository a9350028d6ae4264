"""A 24-hour accelerated run: 1,000 authorizations kept fresh by the beat schedule alone."""

import collections
import random
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from tenants import credentials
from tenants import services
from tenants.models import Authorization
from tenants.models import CredentialToken

CORPS = 1000
STEP = 60  # seconds between beat ticks (the production schedule)
DAY = 24 * 3600


def refresh_in_parallel(keys: list[str], *, workers: int) -> None:
    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            for key in chunk:
                credentials.token_refresh_scheduled(key)
        except BaseException as exc:  # asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(keys[i::workers],)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def fresh_ticket(platform) -> None:
    """Store the simulator's newest ticket, as the suite_ticket callback handler would."""
    suite = platform.suite
    platform.control.push_ticket(suite.suite_id)
    newest = platform.sandbox.state.tickets[suite.suite_id][-1]
    services.suite_ticket_store(
        suite_id=suite.suite_id, ticket=newest.ticket, timestamp=int(newest.issued_at)
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_day_of_1000_tenants_needs_at_most_14_calls_each_and_never_a_dying_token(platform):
    control = platform.control
    sim_now = platform.sandbox.state.clock.now()
    start = datetime.fromtimestamp(sim_now, tz=UTC)
    with time_machine.travel(start, tick=False) as clock:
        for index in range(CORPS):
            corp = control.add_corp(name=f"Corp {index}")
            code = control.install(platform.suite.suite_id, corp["corpid"], push=False)
            services.authorization_install(
                suite=platform.suite, auth_code=code["auth_code"], source="callback"
            )
        assert Authorization.objects.filter(status="active").count() == CORPS
        installed_calls = collections.Counter(
            r["corpid"] for r in control.requests(endpoint="get_corp_token")
        )
        assert set(installed_calls.values()) == {1}
        sample = random.Random(7).sample(list(Authorization.objects.all()), 20)
        worst_left = timedelta(hours=3)
        for tick in range(DAY // STEP):
            # time_machine moves time.time() for the whole process, the simulator's
            # thread included, so this one shift moves both clocks in lockstep.
            clock.shift(STEP)
            if tick % 10 == 0:
                fresh_ticket(platform)  # WeCom pushes a ticket every 10 minutes
            # One beat tick: the due keys are refreshed by four "workers" at once.
            refresh_in_parallel(credentials.tokens_due(), workers=4)
            now = timezone.now()
            dying = CredentialToken.objects.filter(
                kind="corp", expires_at__lt=now + credentials.MIN_SERVE_LIFE
            ).count()
            assert dying == 0, f"{dying} corp tokens within 5 min of expiry at tick {tick}"
            for authorization in sample[tick % 4 :: 4]:
                left = credentials.token_get(authorization).expires_at - now
                worst_left = min(worst_left, left)
    calls = collections.Counter(r["corpid"] for r in control.requests(endpoint="get_corp_token"))
    assert len(calls) == CORPS
    assert max(calls.values()) <= 14, calls.most_common(3)
    assert worst_left >= credentials.MIN_SERVE_LIFE
