"""Bench-only URLconf of the callback handler: WeCom's URLs plus two reference views.

- ``callbacks/bench-bare/``: reads the body and answers ``success`` (the handler alone);
- ``callbacks/bench-insert/``: also stores one inbox row with the ingest's own statement
  (hashed body as dedupe key, a payload-sized column), and nothing else: no signature,
  decryption, parsing or hand-off. Its throughput is the ceiling of any callback URL
  that stores each callback durably before answering.
"""

import hashlib

from django.http import HttpRequest
from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bench.support.urls import bare
from callbacks.services import ingest
from wecom_provider.callback_urls import urlpatterns as callback_urlpatterns


def _row(body: bytes) -> dict:
    return {
        "endpoint": "command",
        "route_id": "bench",
        "receive_id": "bench",
        "info_type": "change_contact",
        "suite_id": "bench",
        "dedupe_key": hashlib.sha256(body).hexdigest(),
        "payload_sealed": "x" * (len(body) * 3 // 4),  # about a sealed payload's size
        "received_at": timezone.now(),
    }


@csrf_exempt
def insert_only(request: HttpRequest) -> HttpResponse:
    ingest._insert_or_count(_row(request.body))
    return _success()


@csrf_exempt
def insert_alone(request: HttpRequest) -> HttpResponse:
    (outcome,) = ingest._upsert_rows([_row(request.body)])
    assert not isinstance(outcome, BaseException), outcome
    return _success()


def _success() -> HttpResponse:
    response = HttpResponse("success", content_type="text/plain")
    response["Content-Length"] = "7"
    return response


urlpatterns = [
    path("callbacks/bench-bare/", bare, name="bench-bare-lean"),
    path("callbacks/bench-insert/", insert_only, name="bench-insert"),
    path("callbacks/bench-insert-alone/", insert_alone, name="bench-insert-alone"),
    *callback_urlpatterns,
]
