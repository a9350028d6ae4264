"""Feed events pushed to a real HTTP receiver that verifies with standardwebhooks."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from callbacks import services as callback_services
from callbacks.dispatch import FEED_PREFIXES
from callbacks.dispatch import GENERIC_FEED_TYPE
from callbacks.models import CallbackEvent
from tenants.feed import feed_publish
from tenants.models import FeedEvent
from tenants.services import FEED_TYPES
from tests.callbacks import signing
from tests.webhooks.conftest import drain
from webhooks import schedule
from webhooks import services
from webhooks.models import Attempt
from webhooks.models import Delivery
from webhooks.models import Subscription

LICENSE_TYPES = [
    "license.paid",
    "license.refunded",
    "license.auto_activated",
    "license.unlicensed",
    "license.expiring",
]
# Paid apps (应用版本付费): tenant events (a suite and a corp), published by licensing.
PAID_APP_TYPES = [
    "app_order.created",
    "app_order.paid",
    "app_order.refunded",
    "app_order.replaced",
    "edition.changed",
    "trial.expiring",
]
WELCOME_CODE = "WELCOME-CODE-7f3a9c"
AUTH_CODE = "AUTH-CODE-SECRET-19d2"


def post_callback(client, suite, xml: str) -> CallbackEvent:
    callback = signing.suite_command(suite, xml)
    response = client.generic(
        "POST",
        f"{callback.path}?{urlencode(callback.query)}",
        callback.body,
        content_type="text/xml",
    )
    assert response.status_code == 200
    row = CallbackEvent.objects.order_by("-pk").first()
    callback_services.callback_process(event_id=row.pk)
    row.refresh_from_db()
    return row


def contact_xml(tenant, info_type: str, change_type: str, extra: str = "") -> str:
    return (
        f"<xml><SuiteId>{tenant.suite.suite_id}</SuiteId><AuthCorpId>{tenant.corp.corpid}"
        f"</AuthCorpId><InfoType>{info_type}</InfoType><ChangeType>{change_type}</ChangeType>"
        f"<TimeStamp>{int(time.time())}</TimeStamp>{extra}</xml>"
    )


@pytest.mark.django_db(transaction=True)
def test_every_event_type_reaches_the_receiver_signed(client, tenant, subscribed, receiver):
    published = []
    # Tenant lifecycle and licence events, through the one publishing function.
    for n, type_ in enumerate([*sorted(set(FEED_TYPES.values())), *LICENSE_TYPES, *PAID_APP_TYPES]):
        corp_only = type_.startswith("license.")
        feed_publish(
            type=type_,
            source_key=f"t:{n}",
            suite=None if corp_only else tenant.suite,
            corp=tenant.corp,
            data={"corpid": tenant.corp.corpid, "n": n},
        )
        published.append(type_)
    # The contact families and an unknown event, as callbacks through the inbox.
    change_types = {
        "change_contact": "create_user",
        "change_external_contact": "add_external_contact",
        "change_external_chat": "create",
        "change_external_tag": "create",
        "share_agent_change": "",
    }
    extras = {
        "change_contact": "<UserID>u1</UserID>",
        "change_external_contact": (
            f"<UserID>u1</UserID><ExternalUserID>wmEXT</ExternalUserID>"
            f"<State>campaign-42</State><WelcomeCode>{WELCOME_CODE}</WelcomeCode>"
        ),
        "change_external_chat": "<ChatId>chat1</ChatId>",
        "change_external_tag": "<Id>tag1</Id><TagType>tag</TagType>",
        "share_agent_change": "",
    }
    for info_type in sorted(set(FEED_PREFIXES) - {"share_chain_change"}):
        change = change_types[info_type]
        row = post_callback(
            client, tenant.suite, contact_xml(tenant, info_type, change, extras[info_type])
        )
        assert row.status == "done", (info_type, row.result, row.last_error)
        prefix = FEED_PREFIXES[info_type]
        published.append(f"{prefix}.{change}" if change else prefix)
    unknown = post_callback(
        client,
        tenant.suite,
        contact_xml(
            tenant,
            "brand_new_event",
            "",
            f"<Foo>bar</Foo><AuthCode>{AUTH_CODE}</AuthCode>"
            f"<Nested><SessionTicket>TICKET-9</SessionTicket><Keep>1</Keep></Nested>",
        ),
    )
    assert unknown.status == "ignored"
    assert GENERIC_FEED_TYPE in unknown.result
    published.append(GENERIC_FEED_TYPE)

    assert drain() == len(published)

    bodies = receiver.verified()  # raises unless every request verifies
    assert sorted(b["type"] for b in bodies) == sorted(published)
    by_type = {b["type"]: b for b in bodies}
    for body, request in zip(bodies, receiver.requests, strict=True):
        entry = FeedEvent.objects.get(pk=int(body["cursor"]))
        assert request.id == body["id"] == f"evt_{entry.pk}"
        assert body["timestamp"] == entry.created_at.isoformat()
    added = by_type["external_contact.add_external_contact"]["data"]
    assert added["WelcomeCode"] == WELCOME_CODE
    assert added["State"] == "campaign-42"
    assert added["ExternalUserID"] == "wmEXT"
    generic = by_type[GENERIC_FEED_TYPE]["data"]
    assert generic["info_type"] == "brand_new_event"
    assert generic["fields"]["Foo"] == "bar"
    assert generic["fields"]["Nested"] == {"Keep": "1"}
    raw = b"".join(r.body for r in receiver.requests)
    assert AUTH_CODE.encode() not in raw
    assert b"TICKET-9" not in raw
    # The polled feed never stores the WelcomeCode, and the delivery log redacts it.
    assert not FeedEvent.objects.filter(data__icontains=WELCOME_CODE).exists()
    assert not any(WELCOME_CODE in a.request_excerpt for a in Attempt.objects.all())
    assert Attempt.objects.filter(request_excerpt__contains="[redacted]").count() == 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


@pytest.mark.django_db(transaction=True)
def test_only_matching_types_in_the_clients_scope_are_delivered(
    tenant, product, receiver, platform
):
    from tests.api.conftest import install

    other = install(platform, 1, suite=platform.template)  # not in the product's scope
    _subscription, secret = services.subscription_create(
        client=product.client, url=receiver.url, event_types=["tenant.*"]
    )
    feed_publish(type="tenant.changed", source_key="a", suite=tenant.suite, corp=tenant.corp)
    feed_publish(type="license.paid", source_key="b", corp=tenant.corp)  # type not taken
    feed_publish(type="tenant.changed", source_key="c", suite=other.suite, corp=other.corp)
    drain()
    bodies = receiver.verified(secret)
    assert [(b["type"], b["corpid"]) for b in bodies] == [("tenant.changed", tenant.corp.corpid)]


@pytest.mark.django_db(transaction=True)
def test_duplicates_carry_the_same_id(tenant, subscribed, receiver):
    for n in range(3):
        feed_publish(
            type="tenant.changed", source_key=f"d{n}", suite=tenant.suite, corp=tenant.corp
        )
    # A lost ack: the receiver got it but answered 500, so it is sent again.
    receiver.script = [500]
    drain()
    with time_machine.travel(timezone.now() + timedelta(seconds=10), tick=True):
        drain()
        # Redelivered tasks and racing sweeps after success send nothing more.
        for delivery in Delivery.objects.all():
            assert services.delivery_attempt(delivery_id=delivery.pk) == "not_due"
        services.deliveries_sweep()
        drain()
    ids = [r.id for r in receiver.requests]
    assert len(ids) == 4
    assert len(set(ids)) == 3
    bodies_by_id = {}
    for request in receiver.requests:
        bodies_by_id.setdefault(request.id, set()).add(request.body)
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())


@pytest.mark.django_db(transaction=True)
def test_a_receiver_outage_loses_nothing(tenant, subscribed, receiver):
    receiver.script = [503] * 12  # 4 events × 3 failed attempts each
    for n in range(4):
        feed_publish(
            type="tenant.changed", source_key=f"o{n}", suite=tenant.suite, corp=tenant.corp
        )
    now = timezone.now()
    with time_machine.travel(now, tick=True) as clock:
        for _ in range(6):
            drain()
            pending = Delivery.objects.filter(status="pending").order_by("next_attempt_at")
            if not pending.exists():
                break
            clock.move_to(pending.first().next_attempt_at + timedelta(milliseconds=10))
            # Every pending retry is due by the longest jittered delay used so far.
            clock.move_to(max(d.next_attempt_at for d in pending) + timedelta(milliseconds=10))
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert [len(d.log.all()) for d in Delivery.objects.order_by("id")] == [4, 4, 4, 4]
    delivered = {b["cursor"] for b in receiver.verified()}
    assert len(delivered) == 4
    subscribed.refresh_from_db()
    assert subscribed.enabled
    assert subscribed.failing_since is None


@pytest.mark.django_db(transaction=True)
def test_retries_follow_the_published_schedule(tenant, subscribed, receiver):
    receiver.default = 500
    feed_publish(type="tenant.changed", source_key="s", suite=tenant.suite, corp=tenant.corp)
    start = timezone.now()
    assert schedule.total_span() >= timedelta(hours=24)
    with time_machine.travel(start, tick=False) as clock:
        for attempt in range(1, schedule.MAX_ATTEMPTS + 1):
            assert drain() == 1
            delivery = Delivery.objects.get()
            assert delivery.attempts == attempt
            if attempt == schedule.MAX_ATTEMPTS:
                break
            wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
            base = schedule.RETRY_DELAYS[attempt - 1]
            assert base * 0.8 - 0.01 <= wait <= base * 1.2 + 0.01
            clock.move_to(delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_status_code == 500
    assert len(receiver.requests) == schedule.MAX_ATTEMPTS


@pytest.mark.django_db(transaction=True)
def test_a_replay_redelivers_with_the_same_id(tenant, subscribed, receiver):
    feed_publish(type="tenant.changed", source_key="r", suite=tenant.suite, corp=tenant.corp)
    drain()
    original = Delivery.objects.get()
    replay = services.delivery_replay(delivery=original)
    drain()
    count = services.deliveries_replay_range(
        subscription=subscribed,
        start=original.event_at,
        end=timezone.now(),
    )
    assert count == 1
    drain()
    ids = [r.id for r in receiver.requests]
    assert ids == [original.msg_id] * 3
    assert len({r.body for r in receiver.requests}) == 1
    replay.refresh_from_db()
    assert replay.status == "delivered"
    assert replay.replay_of_id == original.pk


@pytest.mark.django_db(transaction=True)
def test_410_disables_the_subscription(tenant, subscribed, receiver):
    receiver.script = [410]
    for n in range(3):
        feed_publish(
            type="tenant.changed", source_key=f"g{n}", suite=tenant.suite, corp=tenant.corp
        )
    first = Delivery.objects.order_by("id").first()
    services.delivery_attempt(delivery_id=first.pk)
    subscribed.refresh_from_db()
    assert not subscribed.enabled
    assert subscribed.disabled_reason == "gone"
    assert set(Delivery.objects.values_list("status", flat=True)) == {"cancelled"}
    drain()
    feed_publish(type="tenant.changed", source_key="g-after", suite=tenant.suite, corp=tenant.corp)
    drain()
    assert len(receiver.requests) == 1
    assert Delivery.objects.count() == 3  # nothing new for a disabled subscription


@pytest.mark.django_db(transaction=True)
def test_days_of_failure_disable_the_subscription(tenant, subscribed, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER_DAYS = 2
    receiver.default = 503
    feed_publish(type="tenant.changed", source_key="f", suite=tenant.suite, corp=tenant.corp)
    drain()
    subscribed.refresh_from_db()
    assert subscribed.failing_since is not None
    services.deliveries_sweep(now=timezone.now() + timedelta(days=1))
    subscribed.refresh_from_db()
    assert subscribed.enabled
    services.deliveries_sweep(now=timezone.now() + timedelta(days=2, minutes=1))
    subscribed.refresh_from_db()
    assert not subscribed.enabled
    assert subscribed.disabled_reason == "failing"
    assert Delivery.objects.get().status == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_tampered_and_stale_requests_fail_verification(tenant, subscribed, receiver):
    feed_publish(type="tenant.changed", source_key="v", suite=tenant.suite, corp=tenant.corp)
    drain()
    (request,) = receiver.requests
    hook = Webhook(receiver.secret)
    assert hook.verify(request.body, request.headers)["type"] == "tenant.changed"
    tampered_body = request.body.replace(b"tenant.changed", b"tenant.cancelled")
    with pytest.raises(WebhookVerificationError):
        hook.verify(tampered_body, request.headers)
    signature = request.headers["webhook-signature"]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(WebhookVerificationError):
        hook.verify(request.body, {**request.headers, "webhook-signature": flipped})
    with pytest.raises(WebhookVerificationError):  # another subscription's secret
        Webhook(services.new_secret()).verify(request.body, request.headers)
    # Stale: the same genuine request, checked 10 minutes later (tolerance is 5).
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=10)),
        pytest.raises(WebhookVerificationError),
    ):
        hook.verify(request.body, request.headers)
    # A replayed old timestamp cannot be refreshed without the secret: it is signed.
    fresh_ts = str(int(time.time()))
    with pytest.raises(WebhookVerificationError):
        hook.verify(request.body, {**request.headers, "webhook-timestamp": fresh_ts + "0"})


@pytest.mark.django_db(transaction=True)
def test_an_unsafe_destination_is_refused_at_attempt_time(tenant, subscribed, receiver, settings):
    # The URL was fine when subscribed; now it names a host resolving to loopback, and
    # loopback is no longer allowlisted.
    settings.WEBHOOK_ALLOWED_HOSTS = []
    port = receiver.url.split(":")[2].split("/")[0]
    Subscription.objects.filter(pk=subscribed.pk).update(url=f"https://localhost:{port}/hooks/in")
    feed_publish(type="tenant.changed", source_key="x", suite=tenant.suite, corp=tenant.corp)
    drain()
    delivery = Delivery.objects.get()
    assert delivery.status == "pending"
    assert "loopback" in delivery.last_error
    assert delivery.log.get().outcome == "refused"
    assert receiver.requests == []


@pytest.mark.django_db(transaction=True)
def test_the_secret_is_sealed_and_never_in_the_log(tenant, subscribed, receiver):
    feed_publish(type="tenant.changed", source_key="k", suite=tenant.suite, corp=tenant.corp)
    drain()
    row = Subscription.objects.values().get(pk=subscribed.pk)
    secret = receiver.secret
    assert secret.startswith("whsec_")
    assert all(secret not in str(value) for value in row.values())
    for attempt in Attempt.objects.values():
        assert all(secret not in str(value) for value in attempt.values())
