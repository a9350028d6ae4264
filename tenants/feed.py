"""Publishing to the product event feed (``FeedEvent``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

from django.db import IntegrityError
from django.db import connections
from django.db import router
from django.db import transaction

from tenants.models import Corp
from tenants.models import FeedEvent
from tenants.models import Suite

# Called inside the publishing transaction with the new entries, each with its push-only
# codes (webhooks/apps.py registers one: deliveries are created atomically with the
# entries, so none is lost between the two). One call per publish, however many entries
# it made: a hook does its per-call work (reading subscriptions) once for a whole batch.
# tenants cannot import the apps that sit above it.
PUBLISH_HOOKS: list[Callable[[list[tuple[FeedEvent, dict]]], None]] = []


@dataclass(frozen=True)
class FeedDraft:
    """One entry to publish with ``feed_publish_many`` (the arguments of feed_publish)."""

    type: str
    source_key: str
    suite: Suite | None = None
    corp: Corp | None = None
    data: dict | None = None
    codes: dict = field(default_factory=dict)


def feed_publish(
    *,
    type: str,
    source_key: str,
    suite: Suite | None = None,
    corp: Corp | None = None,
    data: dict | None = None,
    codes: dict | None = None,
) -> FeedEvent | None:
    """Append one feed entry; return None if ``source_key`` was already published.

    ``source_key`` names the cause (an inbox row, an authorization change…), so a
    handler that runs twice publishes once. ``codes``: short-lived codes (a WelcomeCode)
    handed to the publish hooks only, never stored on the feed row.
    """
    # The outer block makes the entry and the hooks' rows one unit even when the caller
    # runs in autocommit; the inner one confines the duplicate's IntegrityError (a hook's
    # error is never mistaken for "already published").
    with transaction.atomic():
        try:
            with transaction.atomic():
                entry = FeedEvent.objects.create(
                    type=type, source_key=source_key[:128], suite=suite, corp=corp, data=data or {}
                )
        except IntegrityError:
            return None
        _run_hooks([(entry, codes or {})])
    return entry


def feed_publish_many(drafts: list[FeedDraft]) -> list[FeedEvent | None]:
    """Append many feed entries in one statement; return each draft's entry, or None
    where its ``source_key`` was already published (before, or earlier in ``drafts``).

    The same rules as feed_publish, for a batch of callbacks: one INSERT … ON CONFLICT
    DO NOTHING instead of an INSERT and two savepoints per entry, and one call of each
    hook for all of them. Entries get ids in the order of ``drafts``.
    """
    if not drafts:
        return []
    entries: list[FeedEvent | None] = []
    fresh: dict[str, FeedEvent] = {}
    for draft in drafts:
        key = draft.source_key[:128]
        if key in fresh:
            entries.append(None)  # published just before, in this very batch
            continue
        entry = FeedEvent(
            type=draft.type,
            source_key=key,
            suite=draft.suite,
            corp=draft.corp,
            data=draft.data or {},
        )
        fresh[key] = entry
        entries.append(entry)
    with transaction.atomic():
        ids = _insert_new(list(fresh.values()))
        published = []
        for position, (draft, entry) in enumerate(zip(drafts, entries, strict=True)):
            if entry is None:
                continue
            if entry.source_key not in ids:
                entries[position] = None  # already on the feed
                continue
            entry.pk = ids[entry.source_key]
            entry._state.adding = False
            entry._state.db = router.db_for_write(FeedEvent)
            published.append((entry, dict(draft.codes or {})))
        _run_hooks(published)
    return entries


def _insert_new(entries: list[FeedEvent]) -> dict[str, int]:
    """INSERT the entries, skipping source keys already stored; return {source_key: id}
    of those inserted. PostgreSQL and SQLite ≥ 3.35 both speak the statement."""
    connection = connections[router.db_for_write(FeedEvent)]
    fields = [f for f in FeedEvent._meta.concrete_fields if not f.primary_key]

    def quote(name: str) -> str:
        return connection.ops.quote_name(name)

    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    # Only model metadata goes into the text; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(FeedEvent._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(f.column) for f in fields)}) VALUES "
        + ", ".join([row] * len(entries))
        + f" ON CONFLICT ({quote('source_key')}) DO NOTHING"
        + f" RETURNING {quote('id')}, {quote('source_key')}"
    )
    params = [
        f.get_db_prep_save(f.pre_save(entry, add=True), connection)
        for entry in entries
        for f in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {source_key: pk for pk, source_key in cursor.fetchall()}


def _run_hooks(published: list[tuple[FeedEvent, dict]]) -> None:
    if published:
        for hook in PUBLISH_HOOKS:
            hook(published)
