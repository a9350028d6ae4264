"""The path from a callback batch to first attempts works in batches (bench/webhooks.py):
one publish per callback batch, one webhooks message per publish, attempts claimed,
sent side by side and recorded together, and none of it loses a guarantee."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
from datetime import timedelta

import pytest
import redis
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from callbacks import services as callback_services
from callbacks import tasks as callback_tasks
from callbacks.models import CallbackEvent
from tenants.feed import FeedDraft
from tenants.feed import feed_publish_many
from tenants.models import FeedEvent
from tests.api.conftest import install
from tests.support import celery_worker
from tests.support import database_url
from tests.support import django_env
from tests.support import wait_until
from tests.webhooks.receiver import receiver_server
from webhooks import services
from webhooks import ssrf
from webhooks.models import Attempt
from webhooks.models import Delivery
from webhooks.models import Subscription


def contact_rows(tenant, count: int, *, start: int = 0, change_type: str = "create_user"):
    """Stored, pending contact callbacks for ``tenant`` (what the request path leaves)."""
    rows = []
    for n in range(start, start + count):
        row = CallbackEvent(
            endpoint="data",
            route_id=tenant.suite.suite_id,
            receive_id=tenant.corp.corpid,
            info_type="change_contact",
            change_type=change_type[:64],
            suite_id=tenant.suite.suite_id,
            corp_id=tenant.corp.corpid,
            dedupe_key=f"b{n:063d}",
        )
        row.payload = (
            f"<xml><SuiteId>{tenant.suite.suite_id}</SuiteId><AuthCorpId>{tenant.corp.corpid}"
            f"</AuthCorpId><InfoType>change_contact</InfoType><TimeStamp>1700000000"
            f"</TimeStamp><ChangeType>{change_type}</ChangeType><UserID>u{n}</UserID></xml>"
        )
        row.save()
        rows.append(row)
    return rows


def webhooks_messages() -> list[tuple[str, list]]:
    """(task name, args) of every message waiting on the real broker's webhooks queue."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        raw = client.lrange(services.QUEUE, 0, -1)
    finally:
        client.close()
    found = []
    for item in reversed(raw):  # kombu pushes on the left: oldest last
        message = json.loads(item)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        found.append((message["headers"]["task"], args))
    return found


@pytest.mark.django_db(transaction=True)
def test_a_callback_batch_makes_one_publish_and_one_webhooks_message(tenant, subscribed, receiver):
    rows = contact_rows(tenant, 5)

    callback_tasks.process_callbacks.run([row.pk for row in rows], False)

    entries = list(FeedEvent.objects.filter(source_key__startswith="callback:").order_by("pk"))
    assert [e.data["UserID"] for e in entries] == [f"u{n}" for n in range(5)]  # in row order
    deliveries = list(Delivery.objects.order_by("pk"))
    assert [d.feed_event_id for d in deliveries] == [e.pk for e in entries]
    assert webhooks_messages() == [("webhooks.deliver_batch", [[d.pk for d in deliveries]])]

    # The message, as the webhooks worker runs it.
    (_, (ids,)) = webhooks_messages()[0]
    outcomes = services.deliveries_attempt(delivery_ids=ids)
    assert outcomes == dict.fromkeys(ids, "delivered")
    bodies = receiver.verified()
    assert sorted(b["cursor"] for b in bodies) == sorted(str(e.pk) for e in entries)
    assert {r.id for r in receiver.requests} == {f"evt_{e.pk}" for e in entries}
    # Run again (a redelivered message, the sweep's copy): nothing more is sent.
    assert services.deliveries_attempt(delivery_ids=ids) == dict.fromkeys(ids, "not_due")
    assert len(receiver.requests) == 5


@pytest.mark.django_db(transaction=True)
def test_a_batch_costs_the_same_statements_whatever_its_size(tenant, subscribed, receiver):
    def statements(rows) -> int:
        with CaptureQueriesContext(connection) as captured:
            handled = callback_services.callback_process_local_batch(
                event_ids=[row.pk for row in rows]
            )
        assert handled == {row.pk for row in rows}
        return len(captured)

    small = statements(contact_rows(tenant, 2))
    large = statements(contact_rows(tenant, 20, start=100))
    assert small == large
    assert Delivery.objects.count() == 22

    def attempt_statements(ids) -> int:
        with CaptureQueriesContext(connection) as captured:
            services.deliveries_attempt(delivery_ids=ids)
        return len(captured)

    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    assert attempt_statements(ids[:2]) == attempt_statements(ids[2:18])
    assert set(Delivery.objects.filter(pk__in=ids[:18]).values_list("status", flat=True)) == {
        "delivered"
    }


@pytest.mark.django_db(transaction=True)
def test_publishing_many_keeps_each_entry_s_scope_and_dedupe(tenant, product, receiver, platform):
    other = install(platform, 1, suite=platform.template)  # outside the product's scope
    _, secret = services.subscription_create(
        client=product.client, url=receiver.url, event_types=["*"]
    )
    feed_publish_many([FeedDraft(type="tenant.changed", source_key="early", suite=tenant.suite)])
    drafts = [
        FeedDraft(type="tenant.changed", source_key="m1", suite=tenant.suite, corp=tenant.corp),
        FeedDraft(type="tenant.changed", source_key="m2", suite=other.suite, corp=other.corp),
        FeedDraft(type="license.paid", source_key="m3", corp=tenant.corp),  # corp only
        FeedDraft(type="tenant.changed", source_key="early", suite=tenant.suite),  # published
        FeedDraft(type="tenant.changed", source_key="m1", suite=tenant.suite),  # twice here
        FeedDraft(type="contact.create_user", source_key="m4", suite=tenant.suite,
                  data={"UserID": "u9"}, codes={"WelcomeCode": "W-1"}),
    ]  # fmt: skip
    entries = feed_publish_many(drafts)

    assert [e is None for e in entries] == [False, False, False, True, True, False]
    assert [e.pk for e in entries if e] == sorted(e.pk for e in entries if e)
    assert FeedEvent.objects.filter(source_key="m1").count() == 1
    delivered_for = set(Delivery.objects.values_list("feed_event__source_key", flat=True))
    assert delivered_for == {"early", "m1", "m3", "m4"}  # m2 is not the product's
    services.deliveries_attempt(delivery_ids=list(Delivery.objects.values_list("pk", flat=True)))
    bodies = {b["cursor"]: b for b in receiver.verified(secret)}
    assert bodies[str(entries[5].pk)]["data"] == {"UserID": "u9", "WelcomeCode": "W-1"}
    assert "WelcomeCode" not in FeedEvent.objects.get(source_key="m4").data


@pytest.mark.django_db(transaction=True)
def test_a_batch_s_sends_run_side_by_side(tenant, subscribed, receiver):
    # Every request is answered only once all three are in: sent one after another,
    # the first would wait in vain and be answered 500.
    together = threading.Barrier(3)

    def hold(_request):
        try:
            together.wait(timeout=10)
        except threading.BrokenBarrierError:
            return 500
        return None

    receiver.hold = hold
    contact_rows(tenant, 3)
    callback_services.callback_process_local_batch(
        event_ids=list(CallbackEvent.objects.values_list("pk", flat=True))
    )
    ids = list(Delivery.objects.values_list("pk", flat=True))

    assert services.deliveries_attempt(delivery_ids=ids) == dict.fromkeys(ids, "delivered")
    assert len(receiver.verified()) == 3


@pytest.mark.django_db(transaction=True)
def test_mixed_outcomes_in_one_batch_are_each_recorded(tenant, product, subscribed, receiver):
    with receiver_server() as failing, receiver_server() as gone:
        failing.default, gone.default = 503, 410
        failing_sub, failing.secret = services.subscription_create(
            client=product.client, url=failing.url, event_types=["contact.*"]
        )
        gone_sub, gone.secret = services.subscription_create(
            client=product.client, url=gone.url, event_types=["contact.*"]
        )
        Subscription.objects.filter(pk=subscribed.pk).update(failing_since=timezone.now())
        contact_rows(tenant, 2)
        callback_services.callback_process_local_batch(
            event_ids=list(CallbackEvent.objects.values_list("pk", flat=True))
        )
        (_, (ids,)) = webhooks_messages()[0]
        assert len(ids) == 6  # 2 events × 3 subscriptions, one message

        outcomes = services.deliveries_attempt(delivery_ids=ids)

        by_sub = {}
        for delivery in Delivery.objects.filter(pk__in=ids):
            by_sub.setdefault(delivery.subscription_id, set()).add(
                (outcomes[delivery.pk], delivery.status, delivery.last_status_code)
            )
        assert by_sub[subscribed.pk] == {("delivered", "delivered", 200)}
        assert by_sub[failing_sub.pk] == {("http_error", "pending", 503)}
        assert by_sub[gone_sub.pk] == {("gone", "cancelled", 410)}
        assert Attempt.objects.filter(delivery_id__in=ids).count() == 6
        for delivery in Delivery.objects.filter(subscription=failing_sub):
            assert delivery.attempts == 1
            assert delivery.next_attempt_at > timezone.now()  # the retry, 5 s ± 20 %
        subscribed.refresh_from_db()
        failing_sub.refresh_from_db()
        gone_sub.refresh_from_db()
        assert subscribed.failing_since is None  # a success stops the clock
        assert failing_sub.failing_since is not None  # a failure starts it
        assert (gone_sub.enabled, gone_sub.disabled_reason) == (False, "gone")
        # The near retries went back to the queue, counting down.
        retried = [args[0] for task, args in webhooks_messages()[1:]]
        assert sorted(pk for batch in retried for pk in batch) == sorted(
            Delivery.objects.filter(subscription=failing_sub).values_list("pk", flat=True)
        )
        assert len(failing.verified()) == len(gone.verified()) == 2


@pytest.mark.django_db(transaction=True)
def test_a_stale_worker_s_result_is_not_written(tenant, subscribed, receiver):
    """Worker A's attempt outlives its lease; worker B makes attempt 2, which succeeds.
    A's late failure must not overwrite B's result."""
    first_in, release = threading.Event(), threading.Event()

    def hold(request):
        if not first_in.is_set():
            first_in.set()
            release.wait(timeout=20)
            return 500  # A's answer: a failure, late
        return None

    receiver.hold = hold
    contact_rows(tenant, 1)
    callback_services.callback_process_local_batch(
        event_ids=list(CallbackEvent.objects.values_list("pk", flat=True))
    )
    delivery = Delivery.objects.get()
    results: list = []

    def worker_a() -> None:
        try:
            results.append(services.deliveries_attempt(delivery_ids=[delivery.pk]))
        finally:
            from django.db import connection as thread_connection

            thread_connection.close()

    thread = threading.Thread(target=worker_a)
    thread.start()
    assert first_in.wait(timeout=20)
    # A's lease runs out (its worker looks dead); B takes the delivery.
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert services.deliveries_attempt(delivery_ids=[delivery.pk]) == {delivery.pk: "delivered"}
    release.set()
    thread.join(timeout=30)

    assert results == [{delivery.pk: "http_error"}]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert sorted(Attempt.objects.values_list("number", "outcome")) == [
        (1, "http_error"),
        (2, "delivered"),
    ]
    assert {r.id for r in receiver.requests} == {delivery.msg_id}  # the same id both times


@pytest.mark.django_db(transaction=True)
def test_the_sweep_still_sends_what_the_fast_path_lost(tenant, subscribed, receiver):
    contact_rows(tenant, 3)
    callback_services.callback_process_local_batch(
        event_ids=list(CallbackEvent.objects.values_list("pk", flat=True))
    )
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete(services.QUEUE)  # the message is lost
    assert services.deliveries_sweep() == 0  # fresh: the publisher's message may be on its way
    later = timezone.now() + timedelta(seconds=11)
    assert services.deliveries_sweep(now=later) == 3
    (task, (ids,)) = webhooks_messages()[0]
    assert task == "webhooks.deliver_batch"
    services.deliveries_attempt(delivery_ids=ids)
    assert len(receiver.verified()) == 3


def test_an_answer_trickling_past_the_deadline_ends_the_attempt_as_a_timeout():
    """A receiver sending its answer a byte at a time, each well within the read
    timeout, cannot hold an attempt past its deadline."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not stop.is_set():
                try:
                    conn.sendall(b"X")
                except OSError:
                    return
                time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    target = ssrf.check_url(f"http://127.0.0.1:{port}/in", ssrf.Allowlist.parse(["127.0.0.1"]))
    try:
        answer = ssrf.post(target, b"{}", {}, timeout=10, deadline=0.5)
    finally:
        stop.set()
        listener.close()
    assert (answer.status, answer.error) == (None, "timeout")


@pytest.mark.django_db(transaction=True)
def test_a_webhooks_worker_killed_mid_batch_loses_nothing(tenant, subscribed, receiver):
    """A real worker takes a batch, sends it, and is SIGKILLed before it records a result.
    The leased deliveries go out again, with the same ids, once their lease has run out."""
    release = threading.Event()
    receiver.hold = lambda _request: (release.wait(timeout=60), None)[1]
    contact_rows(tenant, 3)
    callback_services.callback_process_local_batch(
        event_ids=list(CallbackEvent.objects.values_list("pk", flat=True))
    )
    env = django_env(
        DATABASE_URL=database_url(connection.settings_dict), WEBHOOK_ALLOWED_HOSTS="127.0.0.1"
    )
    with celery_worker(env=env, queues=services.QUEUE, concurrency=1) as worker:
        wait_until(lambda: len(receiver.requests) == 3, timeout=60, message="the batch's sends")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    release.set()

    leased = list(Delivery.objects.order_by("pk"))
    assert {(d.status, d.attempts) for d in leased} == {("pending", 1)}
    assert not Attempt.objects.exists()  # it died before recording anything
    assert services.deliveries_sweep() == 0  # leased: never two attempts at once
    with time_machine.travel(timezone.now() + services.LEASE + timedelta(seconds=1)):
        assert services.deliveries_sweep() == 3
        (_, (ids,)) = webhooks_messages()[-1]
        assert services.deliveries_attempt(delivery_ids=ids) == dict.fromkeys(ids, "delivered")
    assert {(d.status, d.attempts) for d in Delivery.objects.all()} == {("delivered", 2)}
    ids_sent = [r.id for r in receiver.requests]
    assert len(ids_sent) == 6
    assert sorted(ids_sent) == sorted([d.msg_id for d in leased] * 2)  # same ids again
    assert len(receiver.verified()) == 6
