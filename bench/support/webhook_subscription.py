"""Subscribe the webhooks benchmark's receiver: ``python -m bench.support.webhook_subscription``.

Run in the benchmark's environment. Reads the receiver's URL, the suite and the signing
secret (made up per run) from BENCH_WEBHOOK_URL, BENCH_WEBHOOK_SUITE and
BENCH_WEBHOOK_SECRET: a secret never goes on a command line.
"""

from __future__ import annotations

import os

import django


def main() -> None:
    django.setup()
    from api import services as api_services
    from webhooks.models import Subscription
    from webhooks.models import new_uid

    client, _ = api_services.api_client_create(
        name="bench-webhooks", suite_ids=[os.environ["BENCH_WEBHOOK_SUITE"]]
    )
    subscription = Subscription(
        uid=new_uid("sub"),
        client=client,
        url=os.environ["BENCH_WEBHOOK_URL"],
        event_types=["contact.*"],
    )
    subscription.secret = os.environ["BENCH_WEBHOOK_SECRET"]
    subscription.save()


if __name__ == "__main__":
    main()
