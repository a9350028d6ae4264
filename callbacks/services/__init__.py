"""Writes for the callbacks app: the inbox from the request to the handler and after.

- ``ingest``: the request path: verify, decrypt, store one row, answer; no WeCom call,
  no task run, no dependency on Redis (hand-off to workers is best effort after the
  commit: callbacks/handoff.py, callbacks/queue.py);
- ``processing``: claim a row (one worker per row), dispatch it (callbacks/dispatch.py),
  record the outcome or the retry;
- ``inbox``: the sweeper for rows left behind, replay, quarantine and retention.

Refusals are counted by callbacks/rejections.py (re-exported here).
"""

from callbacks.queue import enqueue
from callbacks.queue import enqueue_batch
from callbacks.rejections import binding_rejection_count
from callbacks.rejections import rejection_record
from callbacks.services.inbox import STALE_PROCESSING
from callbacks.services.inbox import SWEEP_GRACE
from callbacks.services.inbox import callback_quarantine
from callbacks.services.inbox import callback_replay
from callbacks.services.inbox import inbox_prune
from callbacks.services.inbox import inbox_sweep
from callbacks.services.ingest import PRIORITY_TYPES
from callbacks.services.ingest import Rejected
from callbacks.services.ingest import Stored
from callbacks.services.ingest import callback_ingest
from callbacks.services.ingest import callback_verify_url
from callbacks.services.processing import MAX_ATTEMPTS
from callbacks.services.processing import SECRET_EVENT_FIELDS
from callbacks.services.processing import callback_process
from callbacks.services.processing import callback_process_local_batch

__all__ = [
    "MAX_ATTEMPTS",
    "PRIORITY_TYPES",
    "SECRET_EVENT_FIELDS",
    "STALE_PROCESSING",
    "SWEEP_GRACE",
    "Rejected",
    "Stored",
    "binding_rejection_count",
    "callback_ingest",
    "callback_process",
    "callback_process_local_batch",
    "callback_quarantine",
    "callback_replay",
    "callback_verify_url",
    "enqueue",
    "enqueue_batch",
    "inbox_prune",
    "inbox_sweep",
    "rejection_record",
]
