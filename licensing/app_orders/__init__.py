"""Paid apps (应用版本付费, protocol doc §13) beside interface licences.

Every order WeCom knows for our suites, mirrored with all its fields and its status
history, and each tenant's edition (edition, trial or paid term, user limit) with its
history. Events are hints and WeCom's API is the truth: an order callback makes us read
the order (``service/get_order``); a poller follows orders that are not final and
editions whose term ends; a reconciler walks ``service/get_order_list`` in windows, so a
lost callback costs a delay, never a row.

- ``models.py``: AppOrder (+ status history), TenantEdition (+ history), TrialExtension;
- ``services.py``: orders (observe, forward-only transitions, sync, poller claims);
- ``editions.py``: edition reads (fenced by read time), trials (prolong_try), expiry scan;
- ``reconcile.py``: the window walk; ``selectors.py``: reads; ``tasks.py``: Celery;
- ``handlers.py``: the six callbacks; ``admin.py``: the console.
"""
