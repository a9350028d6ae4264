"""An install's follow-up reads give way to auth code exchanges (issue 17, create_auth burst).

The permanent code is stored first; auth info, edition, admins, permissions and the corp
token are background calls that take no slot a waiting call needs. While a product call
(another corp's exchange) waits for a slot, they are deferred to tenants.install_follow_up,
which completes the install once the ceiling has room. Simulator over HTTP, real broker.
"""

from __future__ import annotations

import json
import os

import pytest
import redis
from celery.exceptions import Retry

from tenants import credentials
from tenants import services
from tenants import tasks
from tenants.models import Authorization
from tenants.wecom import RATE_KEY

FOLLOW_UP_CALLS = ("get_auth_info_v1", "get_admin_list", "get_permissions", "get_corp_token")


@pytest.fixture
def broker():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(autouse=True)
def production_ceiling(settings):
    settings.WECOM_MAX_CALLS_PER_SECOND = 10
    settings.WECOM_RATE_PRODUCT_RESERVE_PERCENT = 30


def calls(platform) -> dict[str, int]:
    return {
        endpoint: len(platform.requests(endpoint))
        for endpoint in ("get_permanent_code", *FOLLOW_UP_CALLS)
    }


def queued_follow_ups(broker) -> list[list]:
    found = []
    for raw in broker.lrange("default", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == "tenants.install_follow_up":
            found.append(json.loads(message["headers"]["argsrepr"].replace("'", '"')))
    return found


def install(platform, name: str) -> Authorization:
    corp = platform.control.add_corp(name=name)
    code = platform.control.install(platform.suite.suite_id, corp["corpid"], push=False)
    return services.authorization_install(
        suite=platform.suite, auth_code=code["auth_code"], source="callback"
    )


@pytest.mark.django_db(transaction=True)
def test_during_a_burst_the_code_is_stored_and_the_follow_up_waits_for_room(platform, broker):
    broker.delete("default")
    # Another corp's exchange is waiting for a slot (its entry would expire in 60 s).
    now_s, now_us = broker.time()
    waiting = f"{RATE_KEY}:waiting"
    broker.zadd(waiting, {"exchange-elsewhere": (now_s + 60) * 1_000_000 + now_us})
    before = calls(platform)

    authorization = install(platform, "Burst Corp")

    after = calls(platform)
    assert after["get_permanent_code"] == before["get_permanent_code"] + 1  # product: goes on
    assert {e: after[e] - before[e] for e in FOLLOW_UP_CALLS} == dict.fromkeys(FOLLOW_UP_CALLS, 0)
    authorization.refresh_from_db()
    assert authorization.is_active
    assert authorization.permanent_code  # stored: the code is safe
    assert authorization.auth_info_synced_at is None  # the reads are still to come
    assert queued_follow_ups(broker) == [[authorization.pk]]

    # Deferred again while the exchange still waits: nothing sent, asked to retry.
    with pytest.raises(Retry):
        tasks.install_follow_up(authorization.pk)
    assert calls(platform) == after

    broker.zrem(waiting, "exchange-elsewhere")  # the burst is over
    tasks.install_follow_up(authorization.pk)  # as a worker runs it

    done = calls(platform)
    authorization.refresh_from_db()
    assert authorization.auth_info_synced_at is not None
    assert authorization.agent_id is not None
    assert done["get_auth_info_v1"] == after["get_auth_info_v1"] + 1
    assert done["get_corp_token"] == after["get_corp_token"] + 1
    credentials.token_get(authorization)  # the corp token was fetched: no further call
    assert calls(platform)["get_corp_token"] == done["get_corp_token"]


@pytest.mark.django_db(transaction=True)
def test_with_room_the_follow_up_runs_at_once_and_nothing_is_queued(platform, broker):
    broker.delete("default")
    before = calls(platform)

    authorization = install(platform, "Quiet Corp")

    after = calls(platform)
    authorization.refresh_from_db()
    assert authorization.auth_info_synced_at is not None
    assert after["get_auth_info_v1"] == before["get_auth_info_v1"] + 1
    assert after["get_corp_token"] == before["get_corp_token"] + 1
    assert queued_follow_ups(broker) == []


@pytest.mark.django_db(transaction=True)
def test_a_follow_up_of_a_cancelled_install_does_nothing(platform, broker):
    authorization = install(platform, "Gone Corp")
    Authorization.objects.filter(pk=authorization.pk).update(status=Authorization.Status.CANCELLED)
    before = calls(platform)
    tasks.install_follow_up(authorization.pk)
    tasks.install_follow_up(10**9)  # deleted meanwhile
    assert calls(platform) == before


@pytest.mark.django_db(transaction=True)
def test_a_create_auth_callback_leaves_the_follow_up_to_a_task_even_with_room(platform, broker):
    from tenants import handlers
    from tests.tenants.test_install import create_auth_event

    broker.delete("default")
    corp = platform.control.add_corp(name="Callback Corp")
    event = create_auth_event(platform, corp["corpid"])
    before = calls(platform)

    handlers.handle_create_auth(event)  # what a worker runs for the callback

    after = calls(platform)
    authorization = Authorization.objects.get(corp__corpid=corp["corpid"])
    # Only the exchange: the worker is free for the next auth code of a burst at once.
    assert after["get_permanent_code"] == before["get_permanent_code"] + 1
    assert {e: after[e] - before[e] for e in FOLLOW_UP_CALLS} == dict.fromkeys(FOLLOW_UP_CALLS, 0)
    assert queued_follow_ups(broker) == [[authorization.pk]]
    tasks.install_follow_up(authorization.pk)
    authorization.refresh_from_db()
    assert authorization.auth_info_synced_at is not None
