"""Token freshness and single flight, against the simulator over real HTTP."""

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from tenants import credentials
from tenants import services
from tenants import tasks
from tenants.models import Authorization
from tenants.models import CredentialToken
from tests.support import ROOT
from tests.support import celery_worker
from tests.support import django_env
from tests.support import wait_until


def install(platform, corp_index: int = 0, *, suite=None) -> Authorization:
    suite = suite or platform.suite
    corpid = platform.corps[corp_index]["corpid"]
    result = platform.control.install(suite.suite_id, corpid, push=False)
    return services.authorization_install(
        suite=suite, auth_code=result.get("auth_code") or result["code"], source="callback"
    )


def expire(owner) -> None:
    """Make the stored token unusable (as if its lifetime ran out) and drop the cache."""
    key = credentials.owner_key(owner)
    CredentialToken.objects.filter(owner_key=key).update(
        expires_at=timezone.now() - timedelta(seconds=1), refresh_after=None
    )
    cache.delete(f"token:{key}")


def child_env(platform) -> dict[str, str]:
    db = connection.settings_dict
    return django_env(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        WECOM_API_BASE=platform.sandbox.base_url,
    )


CALLERS = """
import json, sys, threading
import django
django.setup()
from tenants import credentials
from tenants.models import Authorization
authorization = Authorization.objects.select_related("suite", "corp").get(pk=int(sys.argv[1]))
rejected = sys.argv[3] or None
barrier = threading.Barrier(int(sys.argv[2]))
values, errors = [], []
def call():
    try:
        barrier.wait()
        values.append(credentials.token_get(authorization, rejected=rejected).value)
    except Exception as exc:
        errors.append(type(exc).__name__)
threads = [threading.Thread(target=call) for _ in range(int(sys.argv[2]))]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"values": sorted(set(values)), "count": len(values), "errors": errors}))
"""


def run_callers(platform, authorization, *, processes: int, threads: int, rejected: str = ""):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CALLERS, str(authorization.pk), str(threads), rejected],
            cwd=ROOT,
            env=child_env(platform),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.django_db(transaction=True)
def test_64_callers_in_4_processes_make_one_wecom_call(platform):
    authorization = install(platform)
    expire(authorization)
    before = len(platform.requests("get_corp_token"))
    results = run_callers(platform, authorization, processes=4, threads=16)
    assert [r["errors"] for r in results] == [[]] * 4
    assert sum(r["count"] for r in results) == 64
    values = {v for r in results for v in r["values"]}
    assert len(values) == 1
    assert len(platform.requests("get_corp_token")) - before == 1


@pytest.mark.django_db(transaction=True)
def test_forced_refresh_of_the_current_token_is_one_call_however_many_report_it(platform):
    authorization = install(platform, 1)
    stale = credentials.token_get(authorization).value
    platform.control.revoke_tokens(token=stale)  # WeCom invalidated it early
    before = len(platform.requests("get_corp_token"))
    results = run_callers(platform, authorization, processes=4, threads=25, rejected=stale)
    assert [r["errors"] for r in results] == [[]] * 4
    values = {v for r in results for v in r["values"]}
    assert len(values) == 1
    assert stale not in values
    assert len(platform.requests("get_corp_token")) - before == 1


@pytest.mark.django_db
def test_single_forced_refresh_and_already_replaced_token(platform):
    authorization = install(platform, 2)
    first = credentials.token_get(authorization).value
    platform.control.revoke_tokens(token=first)
    before = len(platform.requests("get_corp_token"))
    second = credentials.token_get(authorization, rejected=first).value
    assert second != first
    assert len(platform.requests("get_corp_token")) - before == 1
    # Reporting the old token again: it was already replaced → 0 calls, current returned.
    assert credentials.token_get(authorization, rejected=first).value == second
    assert len(platform.requests("get_corp_token")) - before == 1


@pytest.mark.django_db
def test_never_serves_a_token_with_less_than_five_minutes(platform):
    authorization = install(platform)
    row = authorization.token
    CredentialToken.objects.filter(pk=row.pk).update(
        expires_at=timezone.now() + timedelta(minutes=4)
    )
    cache.clear()
    platform.control.revoke_tokens(kind="corp")
    token = credentials.token_get(authorization)
    assert token.expires_in() >= 300


@pytest.mark.django_db
def test_out_of_order_tickets_keep_the_newest_and_old_tickets_are_never_used(platform):
    suite = platform.suite
    suite.refresh_from_db()
    now = suite.suite_ticket_timestamp + 100  # newer than the simulator's first ticket
    assert services.suite_ticket_store(suite_id=suite.suite_id, ticket="TICKET-NEW", timestamp=now)
    assert not services.suite_ticket_store(
        suite_id=suite.suite_id, ticket="TICKET-OLD", timestamp=now - 600
    )
    suite.refresh_from_db()
    assert suite.suite_ticket == "TICKET-NEW"
    assert suite.suite_ticket_timestamp == now
    # A ticket older than 30 minutes is refused before WeCom is asked.
    services.suite_ticket_store(suite_id=suite.suite_id, ticket="x", timestamp=now + 1)
    from tenants.models import Suite

    Suite.objects.filter(pk=suite.pk).update(suite_ticket_timestamp=int(time.time()) - 31 * 60)
    expire(suite)
    before = len(platform.requests("get_suite_token"))
    with pytest.raises(credentials.SuiteTicketUnavailable):
        credentials.token_get(suite)
    assert len(platform.requests("get_suite_token")) == before


@pytest.mark.django_db
def test_stale_ticket_is_visible_in_readyz_detail(client, platform):
    from tenants.models import Suite

    Suite.objects.filter(pk=platform.suite.pk).update(
        suite_ticket_timestamp=int(time.time()) - 25 * 60
    )
    body = client.get("/readyz").json()
    assert body["suite_tickets"]["stale"] == [platform.suite.suite_id]
    assert body["status"] == "ok"  # staleness is a warning, not unreadiness


@pytest.mark.django_db(transaction=True)
def test_two_beats_firing_at_once_do_not_double_any_call(platform):
    authorizations = [install(platform, i) for i in range(3)]
    due = timezone.now() - timedelta(seconds=1)
    CredentialToken.objects.filter(authorization__in=authorizations).update(refresh_after=due)
    before = len(platform.requests("get_corp_token"))
    env = child_env(platform)
    with celery_worker(env=env, concurrency=2), celery_worker(env=env, concurrency=2):
        threads = [threading.Thread(target=tasks.tokens_refresh_due.delay) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_until(
            lambda: (
                CredentialToken.objects.filter(
                    authorization__in=authorizations, refresh_after__lte=due
                ).count()
                == 0
            ),
            timeout=60,
            message="all due tokens refreshed",
        )
        time.sleep(2)  # let any duplicate task run to completion
    assert len(platform.requests("get_corp_token")) - before == 3
    for row in CredentialToken.objects.filter(authorization__in=authorizations):
        assert row.last_refresh_ok
        assert row.refresh_count >= 1
        assert row.refresh_after > due  # rescheduled, so the next beat skips it
