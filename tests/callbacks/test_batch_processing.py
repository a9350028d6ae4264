"""Contact-family rows processed as one batch: one claim, one commit, same outcomes."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db import transaction
from django.utils import timezone

from callbacks import services
from callbacks import tasks
from callbacks.models import CallbackEvent
from tenants.models import FeedEvent


def contact_row(n: int, *, userid: str | None = None, payload: str | None = None) -> CallbackEvent:
    row = CallbackEvent(
        endpoint="data",
        route_id="wwsuite",
        receive_id="wpcorp",
        info_type="change_contact",
        change_type="create_user",
        suite_id="wwsuite",
        corp_id="wpcorp",
        dedupe_key=f"c{n:063d}",
    )
    row.payload = payload or (
        "<xml><SuiteId>wwsuite</SuiteId><AuthCorpId>wpcorp</AuthCorpId>"
        "<InfoType>change_contact</InfoType><TimeStamp>1700000000</TimeStamp>"
        f"<ChangeType>create_user</ChangeType><UserID>{userid or f'u{n}'}</UserID></xml>"
    )
    row.save()
    return row


def other_row(n: int) -> CallbackEvent:
    row = CallbackEvent(
        endpoint="command",
        route_id="wwsuite",
        receive_id="wwsuite",
        info_type="unknown_type",
        dedupe_key=f"o{n:063d}",
    )
    row.payload = "<xml><InfoType>unknown_type</InfoType><TimeStamp>1</TimeStamp></xml>"
    row.save()
    return row


def statuses(rows) -> list[str]:
    return [CallbackEvent.objects.get(pk=row.pk).status for row in rows]


@pytest.mark.django_db(transaction=True)
def test_a_batch_processes_contact_rows_together_and_leaves_the_rest():
    contacts = [contact_row(n) for n in range(5)]
    others = [other_row(n) for n in range(2)]
    ids = [row.pk for row in contacts + others]

    handled = services.callback_process_local_batch(event_ids=ids)

    assert handled == {row.pk for row in contacts}
    assert statuses(contacts) == ["done"] * 5
    assert statuses(others) == ["pending"] * 2  # not local: the task runs them one by one
    feed = FeedEvent.objects.order_by("pk")
    assert [e.data["UserID"] for e in feed] == [f"u{n}" for n in range(5)]
    assert {e.source_key for e in feed} == {f"callback:{row.dedupe_key}" for row in contacts}
    for row in contacts:
        row.refresh_from_db()
        assert (row.attempts, row.result, row.last_error) == (1, "feed contact.create_user", "")
        assert row.processed_at is not None
        assert row.duration_ms is not None


@pytest.mark.django_db(transaction=True)
def test_the_task_runs_the_batch_then_the_others():
    contacts = [contact_row(n) for n in range(3)]
    others = [other_row(n) for n in range(2)]

    tasks.process_callbacks.run([row.pk for row in contacts + others], False)

    assert statuses(contacts) == ["done"] * 3
    assert statuses(others) == ["ignored"] * 2
    assert FeedEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_batch_does_nothing_more():
    contacts = [contact_row(n) for n in range(4)]
    ids = [row.pk for row in contacts]
    assert len(services.callback_process_local_batch(event_ids=ids)) == 4

    # The same message again (acks_late redelivery), and the sweeper's single path.
    assert services.callback_process_local_batch(event_ids=ids) == set()
    assert [services.callback_process(event_id=pk) for pk in ids] == [None] * 4
    assert FeedEvent.objects.count() == 4
    assert [CallbackEvent.objects.get(pk=pk).attempts for pk in ids] == [1] * 4


@pytest.mark.django_db(transaction=True)
def test_rows_claimed_elsewhere_or_not_due_are_skipped():
    claimed, later, free = contact_row(1), contact_row(2), contact_row(3)
    CallbackEvent.objects.filter(pk=claimed.pk).update(status="processing")
    CallbackEvent.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    # A row locked by another worker's claim right now is skipped, not waited for.
    locked = contact_row(4)
    with transaction.atomic():
        CallbackEvent.objects.select_for_update().get(pk=locked.pk)

        result: list = []

        def other_worker() -> None:
            ids = [claimed.pk, later.pk, free.pk, locked.pk]
            result.append(services.callback_process_local_batch(event_ids=ids))
            from django.db import connection as thread_connection

            thread_connection.close()

        thread = threading.Thread(target=other_worker)
        thread.start()
        thread.join(timeout=30)
    assert result == [{free.pk}]
    assert statuses([claimed, later, free, locked]) == ["processing", "pending", "done", "pending"]
    assert FeedEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_bad_row_fails_alone():
    good = [contact_row(n) for n in range(3)]
    bad = contact_row(9, payload="<xml><InfoType>change_contact")  # not XML: parse fails
    handled = services.callback_process_local_batch(event_ids=[row.pk for row in [*good, bad]])

    assert handled == {row.pk for row in [*good, bad]}
    assert statuses(good) == ["done"] * 3
    bad.refresh_from_db()
    assert bad.status == "failed"
    assert bad.last_error
    assert FeedEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_commit_that_fails_keeps_nothing_and_the_sweeper_recovers_the_rows():
    rows = [contact_row(n) for n in range(3)]
    ids = [row.pk for row in rows]
    # A real failure at COMMIT time: a deferred constraint trigger on the feed table
    # (as a database that goes away mid-batch, after the handlers ran).
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION bench_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER refuse_feed AFTER INSERT ON tenants_feedevent "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_refuse()"
        )
    try:
        with pytest.raises(Exception, match="refused at commit"):
            services.callback_process_local_batch(event_ids=ids)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_feed ON tenants_feedevent")
            cursor.execute("DROP FUNCTION bench_refuse()")

    assert FeedEvent.objects.count() == 0  # nothing half-written
    assert statuses(rows) == ["processing"] * 3  # claimed by a worker that "died"
    # Once stale, the sweeper hands them out again, and they are processed once.
    CallbackEvent.objects.filter(pk__in=ids).update(
        claimed_at=timezone.now() - services.STALE_PROCESSING - timedelta(seconds=1)
    )
    assert services.inbox_sweep() == 3
    assert services.callback_process_local_batch(event_ids=ids) == set(ids)
    assert statuses(rows) == ["done"] * 3
    assert FeedEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_also_takes_the_rows_other_messages_carry():
    mine = contact_row(1)
    waiting = [contact_row(n) for n in range(2, 6)]
    elsewhere, later = contact_row(6), contact_row(7)
    CallbackEvent.objects.filter(pk=elsewhere.pk).update(status="processing")
    CallbackEvent.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    unrelated = other_row(1)  # not a contact row: its own message runs it

    handled = services.callback_process_local_batch(event_ids=[mine.pk], also_waiting=3)

    # Its own row and the three oldest waiting ones; never a claimed or undue row.
    assert handled == {mine.pk, *(row.pk for row in waiting[:3])}
    assert statuses([mine, *waiting]) == ["done"] * 4 + ["pending"]
    assert statuses([elsewhere, later, unrelated]) == ["processing", "pending", "pending"]
    # Their own message, when it comes, finds those rows done and runs them no more;
    # being a task's batch, it takes whatever else waits (the fifth row).
    tasks.process_callbacks.run([row.pk for row in waiting[:3]], False)
    assert [CallbackEvent.objects.get(pk=row.pk).attempts for row in waiting[:3]] == [1] * 3
    assert statuses(waiting) == ["done"] * 4
    assert FeedEvent.objects.count() == 5
    assert statuses([elsewhere, later, unrelated]) == ["processing", "pending", "pending"]
    tasks.process_callbacks.run([unrelated.pk], False)
    assert statuses([unrelated]) == ["ignored"]


@pytest.mark.django_db(transaction=True)
def test_a_row_the_batch_cannot_store_fails_alone():
    good = [contact_row(n) for n in range(3)]
    # Authentic, parses, but its feed type is longer than the column: the statement
    # publishing the batch fails; each row then runs alone and only this one fails.
    long_type = "x" * 80
    bad = contact_row(
        9,
        payload=(
            "<xml><SuiteId>wwsuite</SuiteId><AuthCorpId>wpcorp</AuthCorpId>"
            "<InfoType>change_contact</InfoType><TimeStamp>1700000000</TimeStamp>"
            f"<ChangeType>{long_type}</ChangeType><UserID>u9</UserID></xml>"
        ),
    )
    ids = [row.pk for row in [*good, bad]]

    assert services.callback_process_local_batch(event_ids=ids) == set(ids)

    assert statuses(good) == ["done"] * 3
    bad.refresh_from_db()
    assert bad.status == "failed"
    assert "DataError" in bad.last_error
    assert sorted(FeedEvent.objects.values_list("data__UserID", flat=True)) == ["u0", "u1", "u2"]
