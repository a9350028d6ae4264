"""The outbound ceiling holds across processes, counted where WeCom would count: the simulator.

Several real processes (no Django: the protocol library only) share one Redis window and
call the simulator over HTTP. The simulator records when each call arrived; no second of
its clock may hold more calls than the ceiling. Counts only, never elapsed time.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import redis

from tests.support import ROOT
from wecom.ratelimit import CallPriority
from wecom.ratelimit import CallRateLimiter
from wecom.ratelimit import WeComThrottled
from wecom.ratelimit import background_calls
from wecom.ratelimit import current_priority

# One caller process: `calls` calls of one kind, all starting at `start` (a shared
# instant, so the processes really compete), each through the shared limiter.
CALLER = r"""
import json, sys, time
import redis
from wecom.client import StaticToken, WeComClient
from wecom.endpoints import TokenKind
from wecom.errors import WeComApiError
from wecom.ratelimit import CallRateLimiter, WeComThrottled, background_calls

spec = json.loads(sys.argv[1])
limiter = CallRateLimiter(
    spec["ceiling"], redis_client=redis.Redis.from_url(spec["redis_url"]), key=spec["key"],
    reserve=spec["reserve"], product_wait=spec["wait"], background_wait=spec["wait"],
)
client = WeComClient(spec["base_url"], limiter=limiter)
corp = client.corp(StaticToken(TokenKind.CORP, "not-a-real-token"))
outcome = {"ok": 0, "refused": 0, "throttled": 0}
while time.time() < spec["start"]:
    time.sleep(0.005)
for _ in range(spec["calls"]):
    try:
        if spec["kind"] == "background":
            with background_calls():
                corp.getcallbackip()  # a junk token: WeCom refuses it, the call still counts
        else:
            client.get_provider_token(corpid=spec["corpid"], provider_secret=spec["secret"])
        outcome["ok"] += 1
    except WeComThrottled:
        outcome["throttled"] += 1
    except WeComApiError:
        outcome["refused"] += 1
print(json.dumps(outcome))
"""


def run_callers(specs: list[dict]) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.time() + 1.5  # every process is up and waiting by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CALLER, json.dumps({**spec, "start": start})],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for spec in specs
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    return results


def per_second(entries: list[dict]) -> collections.Counter:
    """Calls per whole second of the simulator clock, by arrival."""
    return collections.Counter(int(e["arrived"]) for e in entries)


def busiest_sliding_second(entries: list[dict]) -> int:
    times = sorted(e["arrived"] for e in entries)
    best, left = 0, 0
    for right, t in enumerate(times):
        while times[left] <= t - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("needs the test Redis (make test)")
    return url


@pytest.fixture
def simulator():
    from sandbox import start_sandbox

    handle = start_sandbox()
    try:
        yield handle
    finally:
        handle.stop()


def base_spec(simulator, redis_url: str, **spec) -> dict:
    provider = simulator.config["provider"]
    return {
        "base_url": simulator.base_url,
        "redis_url": redis_url,
        "key": "test:wecom:calls",
        "corpid": provider["corpid"],
        "secret": provider["provider_secret"],
        "reserve": 0.3,
        "wait": 60,
        **spec,
    }


def test_four_processes_never_exceed_the_ceiling_in_any_second(simulator, redis_url):
    ceiling, processes, calls = 5, 4, 15
    spec = base_spec(simulator, redis_url, ceiling=ceiling, calls=calls, kind="product")
    results = run_callers([spec] * processes)

    assert sum(r["ok"] for r in results) == processes * calls  # nobody was refused a slot
    entries = simulator.control().requests(endpoint="get_provider_token")
    assert len(entries) == processes * calls
    seconds = per_second(entries)
    assert max(seconds.values()) <= ceiling, seconds
    # 60 calls from four eager processes: the ceiling was actually the constraint.
    assert len(seconds) >= processes * calls // ceiling
    sys.stdout.write(
        f"busiest second {max(seconds.values())}, busiest sliding 1 s window "
        f"{busiest_sliding_second(entries)} (ceiling {ceiling})\n"
    )


def test_background_floods_leave_room_for_product_calls(simulator, redis_url):
    """Three processes of background work and one of product calls: background gets at
    most ceiling - reserve per second, and no product call fails for want of a slot."""
    ceiling = 6
    spec = base_spec(simulator, redis_url, ceiling=ceiling, reserve=0.5)
    background = {**spec, "kind": "background", "calls": 15}
    # Product calls may wait at most 3 s: enough for a slot in the reserve, far too
    # little if background traffic could fill the whole window.
    product = {**spec, "kind": "product", "calls": 15, "wait": 3}
    results = run_callers([background, background, background, product])

    assert results[3] == {"ok": 15, "refused": 0, "throttled": 0}
    assert all(r["refused"] == 15 for r in results[:3])  # junk tokens, every call made
    control = simulator.control()
    bg_entries = control.requests(endpoint="getcallbackip")
    product_entries = control.requests(endpoint="get_provider_token")
    assert len(bg_entries) == 45
    assert len(product_entries) == 15
    assert max(per_second(bg_entries).values()) <= ceiling // 2
    assert max(per_second(bg_entries + product_entries).values()) <= ceiling


def test_without_redis_each_process_keeps_the_ceiling_and_refuses_typed():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = CallRateLimiter(2, redis_client=dead, product_wait=0, background_wait=0)
    limiter.acquire("gettoken")
    limiter.acquire("gettoken")
    with pytest.raises(WeComThrottled) as caught:
        limiter.acquire("gettoken")
    assert caught.value.request_sent is False
    assert caught.value.endpoint == "gettoken"


def test_priority_is_product_unless_marked_and_reserve_is_kept():
    limiter = CallRateLimiter(10, reserve=0.3)
    assert limiter.capacity == {CallPriority.PRODUCT: 10, CallPriority.BACKGROUND: 7}
    assert CallRateLimiter(1).capacity[CallPriority.BACKGROUND] == 1  # one slot: shared
    assert current_priority() is CallPriority.PRODUCT
    with background_calls():
        assert current_priority() is CallPriority.BACKGROUND
    assert current_priority() is CallPriority.PRODUCT


def test_a_background_call_gives_up_when_only_the_reserve_is_left(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = CallRateLimiter(
        4, redis_client=client, key="test:reserve", reserve=0.5, background_wait=0
    )
    limiter.acquire("a", CallPriority.BACKGROUND)
    limiter.acquire("b", CallPriority.BACKGROUND)
    with pytest.raises(WeComThrottled):
        limiter.acquire("c", CallPriority.BACKGROUND)
    # The reserve is there for product calls, within the same window.
    limiter.acquire("d", CallPriority.PRODUCT)
    limiter.acquire("e", CallPriority.PRODUCT)
    assert client.zcard("test:reserve") == 4


def test_background_gives_way_while_a_product_call_waits(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = CallRateLimiter(
        10, redis_client=client, key="test:yield", background_wait=0, product_wait=0
    )
    # Another process's product call is waiting for a slot (its entry expires in 60 s).
    (now_s, now_us) = client.time()
    client.zadd("test:yield:waiting", {"exchange-elsewhere": (now_s + 60) * 1_000_000 + now_us})
    with pytest.raises(WeComThrottled):
        limiter.acquire("get_auth_info", CallPriority.BACKGROUND)
    limiter.acquire("get_permanent_code", CallPriority.PRODUCT)  # product calls go on
    client.zrem("test:yield:waiting", "exchange-elsewhere")  # served, or gave up
    limiter.acquire("get_auth_info", CallPriority.BACKGROUND)
    assert client.zcard("test:yield") == 2


def test_a_product_call_that_gives_up_stops_holding_background_work_off(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = CallRateLimiter(1, redis_client=client, key="test:giveup", product_wait=0.3)
    limiter.acquire("first", CallPriority.PRODUCT)
    with pytest.raises(WeComThrottled):  # waited (registered as waiting), then gave up
        limiter.acquire("second", CallPriority.PRODUCT)
    assert client.zcard("test:giveup:waiting") == 0


def test_without_redis_background_gives_way_to_a_waiting_product_call():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    limiter = CallRateLimiter(1, redis_client=dead, product_wait=5, background_wait=5)
    limiter.acquire("first", CallPriority.PRODUCT)  # the window is full for ~1.1 s
    order: list[str] = []

    def call(name: str, priority: CallPriority) -> None:
        limiter.acquire(name, priority)
        order.append(name)

    product = threading.Thread(target=call, args=("exchange", CallPriority.PRODUCT))
    product.start()
    deadline = time.monotonic() + 5
    while not limiter._local_waiters and time.monotonic() < deadline:
        time.sleep(0.005)  # the product call is waiting now
    background = threading.Thread(target=call, args=("follow-up", CallPriority.BACKGROUND))
    background.start()
    product.join()
    background.join()
    # Both wanted the slot the first call frees: the product call got it.
    assert order == ["exchange", "follow-up"]


def test_a_zero_wait_background_block_fails_at_once_when_the_window_is_full(redis_url):
    client = redis.Redis.from_url(redis_url)
    limiter = CallRateLimiter(2, redis_client=client, key="test:nowait", reserve=0.5)
    limiter.acquire("a", CallPriority.BACKGROUND)  # the background share: 1 of 2
    started = time.monotonic()
    with background_calls(wait=0), pytest.raises(WeComThrottled):
        limiter.acquire("b")
    assert time.monotonic() - started < limiter.waits[CallPriority.BACKGROUND]
    with background_calls():
        assert current_priority() is CallPriority.BACKGROUND


def test_the_ledger_records_each_grant_in_order(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.delete("test:ledger")
    limiter = CallRateLimiter(3, redis_client=client, key="test:ledgered", ledger="test:ledger")
    for _ in range(7):  # more than the ceiling: some grants wait for the next window
        limiter.acquire("gettoken")
    grants = [int(t) for t in client.lrange("test:ledger", 0, -1)]
    assert len(grants) == 7
    assert grants == sorted(grants)
    window_us = int(limiter.window * 1_000_000)
    # Redis' own clock: no 1.1 s window of grants holds more than the ceiling.
    assert all(b - a >= window_us for a, b in zip(grants, grants[3:], strict=False))
