"""One gateway call, end to end: quota, corp token, WeCom, refresh, retries, breaker.

Order (each step only when the one before let the call through):

1. the quota script counts the call against the corp's, the outbound address's, and
   (message/send, JS-SDK tickets) the member's or ticket counters, and refuses it while
   a breaker is open: ``GatewayRefused`` (429) and WeCom is not called, no token read;
2. the tenant's corp token (tenants.credentials: Redis → database → one single-flight
   fetch; a suspended tenant is AuthorizationInactive, 409; a remembered failure is
   CredentialBackoff, 503);
3. WeCom, through ``wecom.gateway.Forwarder``;
4. a token errcode (40014, 42001, 42007, 42009): one forced refresh through the token
   economy (refreshed only if that token is still the current one, at most once per
   TOKEN_FORCED_REFRESH_COOLDOWN per tenant however many calls report it) and one retry;
   the product sees the retried answer (or WeCom's refusal when no newer token exists);
5. -1 (system busy): up to 3 retries, 0.1/0.2/0.4 s apart (jittered);
6. a transport error: retried (twice at most, and only while the retry can end within
   RETRY_BUDGET_SECONDS of the start) only when the request certainly never left
   (connect errors) or the call only reads (every GET, the read-only POSTs of
   wecom.gateway.SAFE_POSTS). A timeout of anything else, message/send above all, is
   never retried: WeCom may have acted; the product decides (504 says so);
7. 45009/45033: the breaker of (corp, path) opens for every process; WeCom's answer is
   returned unchanged.

Every retry is a WeCom call, so it is counted by the quota script too; a retry that
would exceed a quota is not made (WeCom's last answer stands).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed

from api.gateway import policy
from api.gateway import quotas
from tenants import credentials
from tenants.models import Authorization
from wecom import gateway as wg
from wecom.errors import WeComTransportError
from wecom_provider.backoff import exponential
from wecom_provider.backoff import jittered
from wecom_provider.observability import metrics

logger = logging.getLogger(__name__)

MAX_TRANSPORT_RETRIES = 2
# A retry after a transport error is only started if it can end within this many seconds
# of the call's start (each attempt may take WECOM_HTTP_TIMEOUT): the web server kills a
# worker after 30 s (docker/Dockerfile: gunicorn --timeout 30).
RETRY_BUDGET_SECONDS = 25

_forwarder: wg.Forwarder | None = None
_forwarder_lock = threading.Lock()


def forwarder() -> wg.Forwarder:
    """Return this process's gateway transport (pooled connections to WECOM_API_BASE)."""
    global _forwarder
    if _forwarder is None:
        with _forwarder_lock:
            if _forwarder is None:
                _forwarder = wg.Forwarder(
                    settings.WECOM_API_BASE, timeout=float(settings.WECOM_HTTP_TIMEOUT)
                )
    return _forwarder


def _reset(*, setting: str, **kwargs) -> None:
    global _forwarder
    if setting in ("WECOM_API_BASE", "WECOM_HTTP_TIMEOUT") and _forwarder is not None:
        _forwarder.close()
        _forwarder = None


setting_changed.connect(_reset)


class GatewayRefused(Exception):
    """The call was not sent: a quota is full or a breaker is open (429)."""

    def __init__(self, refusal: quotas.Refusal) -> None:
        super().__init__(f"{refusal.reason} {refusal.scope}")
        self.refusal = refusal


@dataclass
class GatewayCall:
    tenant: Authorization
    method: str
    path: str  # validated (wecom.gateway.validate_path)
    params: list[tuple[str, str]]
    json_body: bytes | None = None
    upload: wg.Upload | None = None


@dataclass
class Outcome:
    answer: wg.Answer
    attempts: int
    token_refreshed: bool
    duration_ms: int
    breaker_seconds: int | None = None


def _label(answer: wg.Answer) -> str:
    if answer.status != 200:
        return f"http_{answer.status}"
    return "unreadable" if answer.errcode is None else str(answer.errcode)


class _Attempts:
    """The retry bookkeeping of one gateway call."""

    def __init__(self, call: GatewayCall) -> None:
        self.call = call
        self.started = time.monotonic()
        self.label = wg.path_label(call.path)
        self.token: str | None = None
        self.count = 0
        self.system_retries = 0
        self.transport_retries = 0
        self.refreshed = False

    def send(self) -> wg.Answer:
        call = self.call
        if self.token is None:
            self.token = credentials.token_get(call.tenant).value
        if call.upload is not None:
            call.upload.file.seek(0)
        self.count += 1
        started = time.monotonic()
        try:
            answer = forwarder().send(
                call.method,
                call.path,
                token=self.token,
                params=call.params,
                json_body=call.json_body,
                upload=call.upload,
                stream_binary=True,
            )
        except WeComTransportError:
            metrics.GATEWAY_WECOM_CALLS_TOTAL.labels(path=self.label, errcode="transport").inc()
            raise
        finally:
            metrics.GATEWAY_WECOM_CALL_SECONDS.labels(path=self.label).observe(
                time.monotonic() - started
            )
        metrics.GATEWAY_WECOM_CALLS_TOTAL.labels(path=self.label, errcode=_label(answer)).inc()
        return answer

    def may_repeat(self, exc: WeComTransportError) -> bool:
        if self.transport_retries >= MAX_TRANSPORT_RETRIES:
            return False
        elapsed = time.monotonic() - self.started
        if elapsed + float(settings.WECOM_HTTP_TIMEOUT) > RETRY_BUDGET_SECONDS:
            return False
        return not exc.request_sent or wg.repeatable(self.call.method, self.call.path)

    def next_step(self, answer: wg.Answer) -> str:
        """Return "retry" (token refreshed, or a -1 to retry) or "done"."""
        if answer.status != 200 or answer.binary:
            return "done"
        if answer.errcode in wg.TOKEN_ERRCODES and not self.refreshed:
            # One forced refresh per call, whatever it yields (no loop on a bad token).
            self.refreshed = True
            fresh = credentials.token_get(self.call.tenant, rejected=self.token).value
            if fresh != self.token:
                self.token = fresh
                return "retry"
            return "done"  # nothing newer (cool-down): WeCom's refusal stands
        if answer.errcode == wg.SYSTEM_BUSY and self.system_retries < wg.MAX_SYSTEM_RETRIES:
            self.system_retries += 1
            time.sleep(system_retry_delay(self.system_retries))
            return "retry"
        return "done"


# Far above what MAX_SYSTEM_RETRIES reaches: the curve is never capped in practice.
MAX_SYSTEM_DELAY = 60.0


def system_retry_delay(retry: int) -> float:
    """Seconds to wait before the ``retry``-th retry (1-based) of a -1: 0.1, 0.2, 0.4 (+jitter)."""
    return jittered(exponential(retry - 1, base=0.1, cap=MAX_SYSTEM_DELAY), low=1.0, high=1.5)


def call_wecom(call: GatewayCall) -> Outcome:
    """Send ``call`` to WeCom with the tenant's corp token; return WeCom's answer.

    Raises GatewayRefused (quota, breaker: nothing sent), WeComTransportError (no answer
    after the retries allowed), and the credential errors of tenants.credentials.
    """
    corpid, suite_id = call.tenant.corp.corpid, call.tenant.suite.suite_id
    checks = policy.checks_for(
        suite_id=suite_id, corpid=corpid, path=call.path, body=call.json_body
    )
    breakers = [quotas.breaker_field(corpid, call.path)]
    started = time.monotonic()
    attempts = _Attempts(call)
    answer: wg.Answer | None = None
    while True:
        refusal = quotas.take(checks=checks, breakers=breakers)
        if refusal is not None:
            if answer is None:
                reason = refusal.scope if refusal.reason == "quota" else "breaker"
                metrics.GATEWAY_REFUSED_TOTAL.labels(path=attempts.label, reason=reason).inc()
                raise GatewayRefused(refusal)
            break  # the retry would exceed a quota: WeCom's last answer stands
        try:
            answer = attempts.send()
        except WeComTransportError as exc:
            if not attempts.may_repeat(exc):
                raise
            attempts.transport_retries += 1
            time.sleep(0.2 * attempts.transport_retries)
            continue
        if attempts.next_step(answer) == "done":
            break
    outcome = Outcome(
        answer=answer,
        attempts=attempts.count,
        token_refreshed=attempts.refreshed,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    if answer.status == 200 and answer.errcode in wg.BREAKER_ERRCODES:
        outcome.breaker_seconds = quotas.open_breaker(
            corpid=corpid, path=call.path, errcode=answer.errcode
        )
    logger.info(
        "wecom gateway %s %s errcode=%s attempts=%d duration_ms=%d corp=%s",
        call.method,
        call.path,
        _label(answer),
        outcome.attempts,
        outcome.duration_ms,
        corpid,
        extra={"wecom_endpoint": call.path, "wecom_corp_id": corpid},
    )
    return outcome
