"""WeCom's callback URLs. The request path only verifies, decrypts, stores and answers."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from django.db import DatabaseError
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from callbacks import services
from wecom_provider.observability import metrics

logger = logging.getLogger(__name__)

# One body for every rejection, whatever the cause: no oracle for attackers.
REJECTED = {"error": "rejected"}


def _rejected(endpoint: str, exc: services.Rejected) -> HttpResponse:
    services.rejection_record(endpoint=endpoint, reason=exc.reason)
    metrics.CALLBACK_RESULTS_TOTAL.labels(endpoint=endpoint, result=f"rejected_{exc.reason}").inc()
    return JsonResponse(REJECTED, status=exc.status)


def _unavailable(endpoint: str) -> HttpResponse:
    # Not "success": WeCom retries only on failure, and we stored nothing.
    metrics.CALLBACK_RESULTS_TOTAL.labels(endpoint=endpoint, result="unavailable").inc()
    return HttpResponse("error", status=503, content_type="text/plain")


def _query(request: HttpRequest, max_fields: int) -> dict[str, str]:
    """The query string as a plain dict; a repeated name keeps its last value, as
    ``request.GET.get`` would. Decoded as Django decodes it (UTF-8, else Latin-1).

    Three or four names are read per callback: building Django's QueryDict (a
    MultiValueDict, one list per name) cost a tenth of the callback work (issue 17).
    """
    raw = request.META.get("QUERY_STRING", "").encode("iso-8859-1")  # WSGI's str → bytes
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("iso-8859-1")
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields))
    except ValueError:  # more than max_fields names, as QueryDict's TooManyFieldsSent
        raise services.Rejected("malformed", 400) from None


def _read_body(request: HttpRequest, limit: int) -> bytes:
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit:
        raise services.Rejected("too_large", 413)
    return request.body


def _handle(request: HttpRequest, endpoint: str, route_id: str) -> HttpResponse:
    response = _answer(request, endpoint, route_id)
    # A plain body of known length, never chunked: the lean handler these URLs run on
    # (wecom_provider/wsgi.py) has no CommonMiddleware to add the header.
    response["Content-Length"] = str(len(response.content))
    return response


def _answer(request: HttpRequest, endpoint: str, route_id: str) -> HttpResponse:
    from django.conf import settings

    started = time.perf_counter()
    try:
        query = _query(request, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS)
        if request.method == "GET":
            answer = services.callback_verify_url(endpoint=endpoint, route_id=route_id, query=query)
            return HttpResponse(answer, content_type="text/plain; charset=utf-8")
        if request.method != "POST":
            raise services.Rejected("method", 405)
        body = _read_body(request, settings.CALLBACK_MAX_BODY_BYTES)
        stored = services.callback_ingest(
            endpoint=endpoint, route_id=route_id, query=query, body=body, started=started
        )
    except services.Rejected as exc:
        return _rejected(endpoint, exc)
    except DatabaseError:
        logger.exception("callback could not be stored (%s %s)", endpoint, route_id)
        return _unavailable(endpoint)
    elapsed = time.perf_counter() - started
    metrics.CALLBACK_INGEST_SECONDS.labels(endpoint=endpoint).observe(elapsed)
    result = "duplicate" if stored.duplicate else "stored"
    if stored.rejected:  # authentic, stored as rejected (callbacks/binding.py): decided
        result = f"rejected_{stored.rejected}"
    metrics.CALLBACK_RESULTS_TOTAL.labels(endpoint=endpoint, result=result).inc()
    # The data URL expects an empty body (or a passive reply); the others "success".
    return HttpResponse("" if endpoint == "data" else "success", content_type="text/plain")


@csrf_exempt
def suite_command(request: HttpRequest, suite_id: str) -> HttpResponse:
    return _handle(request, "command", suite_id)


@csrf_exempt
def suite_data(request: HttpRequest, suite_id: str) -> HttpResponse:
    return _handle(request, "data", suite_id)


@csrf_exempt
def provider_system(request: HttpRequest, corpid: str) -> HttpResponse:
    return _handle(request, "system", corpid)
