"""Callback delivery: encrypt, sign, POST from a background thread, retry like WeCom.

API handlers only enqueue (a WeCom API call never waits on the platform's callback
endpoint, and the platform's callback view may itself call the API). One worker
thread delivers in order, so a suite_ticket pushed before create_auth also arrives
first. Retries happen only on a timeout or connection failure, up to
`push_retries` more tries (§7.2 "仅针对网络连接失败或者网络请求超时情况重试"); a non-2xx
answer or a body other than `success` is recorded, never retried.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx

from sandbox import faults as faults_mod
from sandbox import ids
from sandbox import messages
from wecom.crypto import CallbackCrypto

logger = logging.getLogger(__name__)

COMMAND, DATA, SYSTEM = "command", "data", "system"
# Events WeCom wants answered within 1000 ms (§7.2): slower answers are flagged.
AUTH_EVENTS = frozenset({"create_auth", "change_auth", "cancel_auth", "reset_permanent_code"})


@dataclass
class PushRecord:
    id: int
    channel: str  # command | data | system
    url: str | None
    info_type: str  # InfoType (command/system) or Event (data)
    receive_id: str
    payload: str  # the plaintext XML inside Encrypt
    created_at: float
    suite_id: str = ""
    corpid: str = ""
    change_type: str = ""
    # queued | delivered | rejected (answered, but not 2xx + success) | failed (no answer
    # after every try) | dropped (fault injection) | no_url (no callback_base configured)
    status: str = "queued"
    attempts: int = 0
    reply_status: int | None = None
    reply_body: str | None = None
    latency_ms: float | None = None
    slow: bool = False
    # Simulator time the last answer came back: for a delivered push, when the platform
    # acknowledged it (benches measure ack → processed from here).
    answered_at: float | None = None
    attempt_log: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Job:
    record: PushRecord
    token: str
    aes_key: str
    to_user: str
    agent_id: str


def push(
    state,
    *,
    channel: str,
    info_type: str,
    payload: str,
    suite_id: str = "",
    corpid: str = "",
    change_type: str = "",
    agentid: int | str = "",
) -> PushRecord:
    """Record a callback and hand it to the worker; returns at once (state lock held).

    The receive id, ToUserName and AgentID follow §7.1: command → suite id (template id
    for 代开发) with an empty AgentID; data → the corp's corpid and agentid; system →
    the provider corpid.
    """
    if channel == SYSTEM:
        token, key = state.provider.token, state.provider.encoding_aes_key
        receive_id = to_user = state.provider.corpid
        agent = ""
    else:
        suite = state.suites[suite_id]
        token, key = suite.token, suite.encoding_aes_key
        if channel == COMMAND:
            receive_id = to_user = suite_id
            agent = ""
        else:
            receive_id = to_user = corpid
            agent = str(agentid)
    record = PushRecord(
        id=next(state.push_ids),
        channel=channel,
        url=state.callback_url(channel, suite_id),
        info_type=info_type,
        receive_id=receive_id,
        payload=payload,
        created_at=state.now(),
        suite_id=suite_id,
        corpid=corpid,
        change_type=change_type,
    )
    state.pushes.append(record)
    if record.url is None:
        record.status = "no_url"
    elif state.pusher is not None:
        state.pusher.submit(_Job(record, token, key, to_user, agent))
    return record


class PushWorker:
    """Delivers queued callbacks in order on one daemon thread."""

    def __init__(self, state) -> None:
        self.state = state
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="sandbox-push", daemon=True)
        self._client = httpx.Client(trust_env=False)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._client.close()

    def submit(self, job: _Job) -> None:
        with self._cond:
            self._pending += 1
        self._queue.put(job)

    @property
    def pending(self) -> int:
        with self._cond:
            return self._pending

    def wait(self, timeout: float | None = None) -> bool:
        """Return True once every submitted push is finished, False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                self._deliver(job)
            except Exception:  # a bug here must not kill delivery of later pushes
                logger.exception("sandbox push %s failed", job.record.id)
                with self.state.lock:
                    job.record.status = "failed"
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _deliver(self, job: _Job) -> None:
        state, record = self.state, job.record
        with state.lock:
            fault = faults_mod.take(state.faults, target=faults_mod.CALLBACK, name=record.info_type)
            timeout = state.settings.push_timeout
            retries = state.settings.push_retries
            slow_ms = state.settings.slow_ack_ms
            timestamp = str(state.ts())
        if fault and fault.drop:
            with state.lock:
                record.status = "dropped"
            return
        if fault and fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        nonce = ids.alnum(16)
        crypto = CallbackCrypto(job.token, job.aes_key, record.receive_id)
        # Encrypted once: retries resend the identical payload, like WeCom (§7.2).
        encrypt, signature = crypto.encrypt(record.payload, timestamp, nonce)
        body = messages.envelope(job.to_user, job.agent_id, encrypt).encode()
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        for _ in range(1 + retries):
            started = time.perf_counter()
            try:
                resp = self._client.post(
                    record.url,
                    params=params,
                    content=body,
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                    timeout=timeout,
                )
            except httpx.TransportError as exc:  # timeouts and connection failures only
                elapsed = (time.perf_counter() - started) * 1000
                with state.lock:
                    record.attempts += 1
                    record.latency_ms = round(elapsed, 1)
                    record.attempt_log.append(
                        {"error": type(exc).__name__, "latency_ms": round(elapsed, 1)}
                    )
                continue
            elapsed = (time.perf_counter() - started) * 1000
            text = resp.text
            with state.lock:
                record.attempts += 1
                record.latency_ms = round(elapsed, 1)
                record.answered_at = round(state.clock.now(), 3)
                record.reply_status = resp.status_code
                record.reply_body = text[:2000]
                record.attempt_log.append(
                    {"status": resp.status_code, "latency_ms": round(elapsed, 1)}
                )
                record.slow = record.info_type in AUTH_EVENTS and elapsed > slow_ms
                accepted = resp.is_success and _reply_ok(record.channel, text)
                record.status = "delivered" if accepted else "rejected"
            return
        with state.lock:
            record.status = "failed"


def _reply_ok(channel: str, text: str) -> bool:
    """Return True if the body is what WeCom expects from this URL (§7.2 Replies)."""
    if channel == DATA:
        # An empty body, or a passive reply (<xml><Encrypt>…), is fine on the data URL.
        return text in ("", "success") or text.lstrip().startswith("<xml")
    return text == "success"


def verify_url(state, *, channel: str, suite_id: str | None = None) -> dict[str, Any]:
    """Send the GET URL-verification handshake and return what happened (§7.2, §11 item 13).

    echostr is encrypted with the provider corpid as receive id (the simulator's choice
    on every URL, §7.1) and passes only if the reply body is exactly the plaintext,
    within 1 s.
    """
    with state.lock:
        url = state.callback_url(channel, suite_id)
        if channel == SYSTEM:
            token, key = state.provider.token, state.provider.encoding_aes_key
        else:
            suite = state.suites[suite_id]
            token, key = suite.token, suite.encoding_aes_key
        receive_id = state.provider.corpid
        timestamp = str(state.ts())
        timeout = state.settings.push_timeout
    result: dict[str, Any] = {"channel": channel, "suite_id": suite_id, "url": url, "ok": False}
    if url is None:
        result["error"] = "no callback URL"
        return result
    plaintext = ids.alnum(20)
    nonce = ids.alnum(16)
    echostr, signature = CallbackCrypto(token, key, receive_id).encrypt(plaintext, timestamp, nonce)
    params = {
        "msg_signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }
    started = time.perf_counter()
    try:
        # httpx URL-encodes echostr ('+', '/', '=' become %2B, %2F, %3D), like WeCom.
        with httpx.Client(trust_env=False) as client:
            resp = client.get(url, params=params, timeout=timeout)
    except httpx.TransportError as exc:
        result["error"] = type(exc).__name__
    else:
        elapsed = (time.perf_counter() - started) * 1000
        result.update(
            reply_status=resp.status_code,
            reply_body=resp.text[:2000],
            latency_ms=round(elapsed, 1),
            expected=plaintext,
            ok=resp.status_code == 200 and resp.text == plaintext and elapsed <= 1000,
        )
    with state.lock:
        state.verifications.append(result)
    return result
