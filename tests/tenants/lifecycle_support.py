"""Deliver lifecycle callbacks with chosen TimeStamps through the real callback path.

The simulator plays WeCom (installs, cancels, resets, its API over HTTP); these build
the callbacks it would push, with the TimeStamp a test decides, sign them as WeCom
does, POST them to the platform's callback URL and process the stored row.
"""

from __future__ import annotations

from urllib.parse import urlencode

from prometheus_client import REGISTRY

from callbacks import services
from callbacks.models import CallbackEvent
from tests.callbacks import signing


def create_auth_xml(suite_id: str, auth_code: str, ts: int, state: str = "") -> str:
    return (
        f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId>"
        f"<AuthCode><![CDATA[{auth_code}]]></AuthCode>"
        f"<InfoType><![CDATA[create_auth]]></InfoType><TimeStamp>{ts}</TimeStamp>"
        f"<State><![CDATA[{state}]]></State><ExtraInfo><![CDATA[]]></ExtraInfo></xml>"
    )


def reset_xml(suite_id: str, auth_code: str, ts: int) -> str:
    return (
        f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId>"
        f"<AuthCode><![CDATA[{auth_code}]]></AuthCode>"
        f"<InfoType><![CDATA[reset_permanent_code]]></InfoType><TimeStamp>{ts}</TimeStamp></xml>"
    )


def corp_event_xml(info_type: str, suite_id: str, corpid: str, ts: int) -> str:
    """cancel_auth or change_auth (they share the fields this needs)."""
    return (
        f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId>"
        f"<InfoType><![CDATA[{info_type}]]></InfoType><TimeStamp>{ts}</TimeStamp>"
        f"<AuthCorpId><![CDATA[{corpid}]]></AuthCorpId></xml>"
    )


def post(client, callback: signing.SignedCallback):
    return client.generic(
        "POST",
        f"{callback.path}?{urlencode(callback.query)}",
        callback.body,
        content_type="text/xml",
    )


def deliver(client, suite, xml: str) -> CallbackEvent:
    """POST ``xml`` to the suite's command URL as WeCom would; return the stored row."""
    response = post(client, signing.suite_command(suite, xml))
    assert (response.status_code, response.content) == (200, b"success"), response.content
    rows = [r for r in CallbackEvent.objects.filter(suite_id=suite.suite_id) if r.payload == xml]
    assert len(rows) == 1
    return rows[0]


def process(row: CallbackEvent) -> CallbackEvent:
    """Process the row (as a worker would) and return it as stored afterwards."""
    services.callback_process(event_id=row.pk)
    row.refresh_from_db()
    return row


def replay(row: CallbackEvent) -> CallbackEvent:
    """What the admin's "Replay selected callbacks" does, then the worker."""
    assert services.callback_replay(event=row)
    return process(row)


def not_applied(outcome: str, reason: str, info_type: str, endpoint: str = "command") -> float:
    labels = {"endpoint": endpoint, "info_type": info_type, "outcome": outcome, "reason": reason}
    return REGISTRY.get_sample_value("wecom_callback_not_applied_total", labels) or 0.0


def deliver_push(client, platform, push: dict) -> CallbackEvent:
    """Deliver a callback the simulator recorded (``ctl.pushes()``) to its URL, signed."""
    suites = {s.suite_id: s for s in (platform.suite, platform.template)}
    if push["channel"] == "system":
        callback = signing.system(platform.provider, push["payload"])
    elif push["channel"] == "data":
        callback = signing.suite_data(suites[push["suite_id"]], push["corpid"], push["payload"])
    else:
        callback = signing.suite_command(suites[push["suite_id"]], push["payload"])
    response = post(client, callback)
    assert response.status_code == 200, response.content
    [row] = [
        r
        for r in CallbackEvent.objects.filter(info_type=push["info_type"])
        if r.payload == push["payload"]
    ]
    return row


def deliver_new_pushes(client, platform, since: int) -> tuple[list[CallbackEvent], int]:
    """Deliver and process every push after id ``since``; return the rows and the last id."""
    pushes = platform.control.pushes(since_id=since)
    rows = [process(deliver_push(client, platform, p)) for p in pushes]
    return rows, max([since, *(p["id"] for p in pushes)])


def run_install_follow_ups() -> list[int]:
    """Run the install follow-ups waiting in the broker, as a worker would (an install
    from a create_auth callback reads auth info, edition and permissions in
    tenants.install_follow_up); return the authorization ids they completed."""
    import json
    import os

    import redis

    from tenants import tasks

    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    done = []
    try:
        for raw in broker.lrange("default", 0, -1):
            message = json.loads(raw)
            if message["headers"]["task"] != "tenants.install_follow_up":
                continue
            broker.lrem("default", 1, raw)
            (authorization_id,) = json.loads(message["headers"]["argsrepr"].replace("'", '"'))
            tasks.install_follow_up(authorization_id)
            done.append(authorization_id)
    finally:
        broker.close()
    return done
