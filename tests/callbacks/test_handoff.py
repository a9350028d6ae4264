"""Handing stored rows to the workers: batched off the request thread; batches run to a budget."""

import base64
import json
import threading
import time

import pytest
import redis
from django.conf import settings

from callbacks import tasks
from callbacks.handoff import BatchHandoff
from callbacks.models import CallbackEvent


class Published:
    """The publish seam of BatchHandoff: records what would go to the broker."""

    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[tuple[list[int], bool]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, ids: list[int], priority: bool) -> bool:
        with self.lock:
            self.calls.append((list(ids), priority))
        return not self.fail

    def ids(self, priority: bool) -> list[int]:
        return [i for ids, p in self.calls if p is priority for i in ids]


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_ids_from_many_threads_are_all_published_in_few_batches():
    published = Published()
    handoff = BatchHandoff(published, linger=0.05, max_batch=40)

    def add_many(start: int) -> None:
        for n in range(start, start + 100):
            handoff.add(n, priority=False)

    threads = [threading.Thread(target=add_many, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: len(published.ids(False)) == 400)

    assert sorted(published.ids(False)) == list(range(400))  # each id once, none lost
    assert len(published.calls) < 400 / 4  # batched, not one message per id
    assert max(len(ids) for ids, _ in published.calls) <= 40


def test_priority_ids_do_not_wait_for_the_linger():
    published = Published()
    handoff = BatchHandoff(published, linger=30.0)
    handoff.add(7, priority=True)
    wait_for(lambda: published.ids(True) == [7], timeout=5.0)  # far less than 30 s
    handoff.add(8, priority=False)
    handoff.flush()  # at exit: whatever waits is published at once
    assert published.calls == [([7], True), ([8], False)]


def test_a_failed_publish_stops_the_round_and_keeps_nothing():
    # The rows are in the database, pending: the sweeper dispatches them later.
    published = Published(fail=True)
    handoff = BatchHandoff(published, linger=0.01, max_batch=10)
    for n in range(30):
        handoff.add(n, priority=False)
    handoff.flush()
    assert published.calls == [(list(range(10)), False)]  # first chunk refused: stop
    handoff.flush()
    assert len(published.calls) == 1  # nothing kept for a retry here


def _queued_batches(client: redis.Redis, queue: str = "default") -> list[tuple[list[int], bool]]:
    found = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"].get("task") == "callbacks.process_batch":
            args = json.loads(base64.b64decode(message["body"]))[0]
            found.append((args[0], args[1]))
    return found


@pytest.mark.django_db(transaction=True)
def test_a_batch_over_budget_hands_the_rest_to_other_workers(monkeypatch):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    ids = []
    for n in range(4):
        row = CallbackEvent(
            endpoint="command",
            route_id="s",
            receive_id="s",
            info_type="unknown_type",
            dedupe_key=f"{n:064d}",
        )
        row.payload = "<xml><InfoType>unknown_type</InfoType><TimeStamp>1</TimeStamp></xml>"
        row.save()
        ids.append(row.pk)
    before = _queued_batches(broker)
    monkeypatch.setattr(tasks, "BATCH_BUDGET", -1.0)  # over budget before the first row

    tasks.process_callbacks.run(ids, False)

    new = [batch for batch in _queued_batches(broker) if batch not in before]
    assert sorted(new) == sorted([(ids[:2], False), (ids[2:], False)])
    assert set(CallbackEvent.objects.values_list("status", flat=True)) == {"pending"}

    monkeypatch.setattr(tasks, "BATCH_BUDGET", 10.0)
    tasks.process_callbacks.run(ids, False)
    assert set(CallbackEvent.objects.values_list("status", flat=True)) == {"ignored"}


@pytest.mark.django_db(transaction=True)
def test_a_priority_batch_keeps_one_row_and_spreads_the_rest_over_the_workers():
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    ids = []
    for n in range(7):
        row = CallbackEvent(
            endpoint="command",
            route_id="s",
            receive_id="s",
            info_type="unknown_type",
            dedupe_key=f"p{n:063d}",
            priority=True,
        )
        row.payload = "<xml><InfoType>unknown_type</InfoType><TimeStamp>1</TimeStamp></xml>"
        row.save()
        ids.append(row.pk)
    before = _queued_batches(broker, "priority")

    tasks.process_callbacks.run(ids, True)

    new = [batch for batch in _queued_batches(broker, "priority") if batch not in before]
    # Auth codes do not queue behind each other's WeCom calls in one process: the rest
    # went back to the priority queue at once, in two halves, for any free worker.
    assert sorted(new) == sorted([(ids[1:4], True), (ids[4:], True)])
    statuses = dict(CallbackEvent.objects.values_list("pk", "status"))
    assert statuses[ids[0]] == "ignored"  # processed here
    assert {statuses[pk] for pk in ids[1:]} == {"pending"}


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_dispatches_left_rows_in_batches():
    from datetime import timedelta

    from django.utils import timezone

    from callbacks import services

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    old = timezone.now() - services.SWEEP_GRACE - timedelta(seconds=5)
    ids = []
    for n in range(3):
        row = CallbackEvent(
            endpoint="command",
            route_id="s",
            receive_id="s",
            info_type="unknown_type",
            dedupe_key=f"sweep{n:059d}",
            received_at=old,
        )
        row.payload = "<xml><InfoType>unknown_type</InfoType></xml>"
        row.save()
        ids.append(row.pk)
    before = _queued_batches(broker)

    assert services.inbox_sweep() == 3

    new = [batch for batch in _queued_batches(broker) if batch not in before]
    assert new == [(ids, False)]  # one message for the three rows
    assert services.inbox_sweep() == 0  # just dispatched: not again within the grace
