"""Writes of the webhooks app: subscriptions, deliveries and their attempts, replays,
the sweep, and feed retention.

Delivery is at least once. A delivery row is created in the same transaction as its
feed entry (the ``tenants.feed`` publish hook), so no event is lost between the feed
and the push; after commit its first attempt is enqueued on the ``webhooks`` queue at
once (no beat tick in the way: the first attempt must leave within 2 s). The beat sweep
hands out retries that are due and anything whose message the broker lost.

Everything on the way to a first attempt works in batches, because at a few dozen
events a second the per-event overheads (a Celery message, a claim, a commit, a
subscription lookup) were what filled the CPU and queued events behind each other
(bench/webhooks.py): a callback batch's deliveries are written in one statement and
sent as one message, and the webhooks worker claims, sends (concurrently) and records
a message's deliveries together.

The package's modules, each importing only those before it: ``subscriptions``,
``deliveries`` (creating, enqueueing, replaying, sweeping; retention), ``attempts``
(claim, send side by side, record). Callers import this package:
``from webhooks import services``.
"""

from webhooks.services.attempts import ATTEMPT_TIME_LIMIT
from webhooks.services.attempts import LEASE
from webhooks.services.attempts import SEND_THREADS
from webhooks.services.attempts import deliveries_attempt
from webhooks.services.attempts import delivery_attempt
from webhooks.services.attempts import signed_headers
from webhooks.services.deliveries import BATCH_MAX
from webhooks.services.deliveries import BROKER_BACKOFF
from webhooks.services.deliveries import COUNTDOWN_MAX
from webhooks.services.deliveries import DELIVER_BATCH_TASK
from webhooks.services.deliveries import DELIVER_TASK
from webhooks.services.deliveries import QUEUE
from webhooks.services.deliveries import REPLAY_RANGE_MAX
from webhooks.services.deliveries import deliveries_replay_range
from webhooks.services.deliveries import deliveries_sweep
from webhooks.services.deliveries import delivery_replay
from webhooks.services.deliveries import enqueue
from webhooks.services.deliveries import feed_prune
from webhooks.services.deliveries import feed_published
from webhooks.services.subscriptions import MAX_PATTERNS
from webhooks.services.subscriptions import PATTERN_RE
from webhooks.services.subscriptions import SubscriptionError
from webhooks.services.subscriptions import allowlist
from webhooks.services.subscriptions import event_types_clean
from webhooks.services.subscriptions import new_secret
from webhooks.services.subscriptions import subscription_create
from webhooks.services.subscriptions import subscription_disable
from webhooks.services.subscriptions import subscription_enable
from webhooks.services.subscriptions import subscription_secret_rotate
from webhooks.services.subscriptions import subscription_update
from webhooks.services.subscriptions import url_clean

__all__ = [
    "ATTEMPT_TIME_LIMIT",
    "BATCH_MAX",
    "BROKER_BACKOFF",
    "COUNTDOWN_MAX",
    "DELIVER_BATCH_TASK",
    "DELIVER_TASK",
    "LEASE",
    "MAX_PATTERNS",
    "PATTERN_RE",
    "QUEUE",
    "REPLAY_RANGE_MAX",
    "SEND_THREADS",
    "SubscriptionError",
    "allowlist",
    "deliveries_attempt",
    "deliveries_replay_range",
    "deliveries_sweep",
    "delivery_attempt",
    "delivery_replay",
    "enqueue",
    "event_types_clean",
    "feed_prune",
    "feed_published",
    "new_secret",
    "signed_headers",
    "subscription_create",
    "subscription_disable",
    "subscription_enable",
    "subscription_secret_rotate",
    "subscription_update",
    "url_clean",
]
