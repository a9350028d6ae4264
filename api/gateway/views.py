"""``/api/v1/suites/<suite_id>/corps/<corpid>/wecom/<path>``: a tenant's corp APIs.

Checks, in order, each before anything later happens: the key (401), the path
(``wecom.gateway.validate_path``: 400, or 403 for the families never reachable), the
tenant in the client's scope (404), the client's allowlist (403), the query and body
(400, 411, 413, 415), then the quotas (429) — and only then the corp token and WeCom.
A refused request never reaches WeCom.

WeCom's answer comes back unchanged (its bytes, HTTP 200, errcode included) with
``X-Wecom-Errcode``; a binary answer (media/get) is streamed with WeCom's headers. Our
own refusals use the API's error shape and never carry ``X-Wecom-Errcode``: a product
tells "WeCom said" from "the platform said" by that header.

Audited: one row per request (action ``wecom.call``) with the path, errcode, attempts,
duration and byte counts; never a body, a query value or a token (429s are counted in
metrics only, like every throttled API request).
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpRequest
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample
from drf_spectacular.utils import OpenApiParameter
from drf_spectacular.utils import OpenApiResponse
from drf_spectacular.utils import extend_schema

from api.exceptions import ApiError
from api.gateway import forward
from api.gateway import media
from api.gateway import policy
from api.gateway import quotas
from api.serializers import ErrorSerializer
from api.views.base import TenantScopedApi
from api.views.params import TENANT
from wecom import gateway as wg
from wecom.errors import WeComTransportError
from wecom_provider.observability import metrics

MAX_QUERY_PARAMS = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Seconds a product should wait when WeCom could not be reached at all.
UNREACHABLE_RETRY_AFTER = 5


def _refuse(http_status: int, code: str, message: str, **details) -> ApiError:
    return ApiError(status_code=http_status, code=code, message=message, details=details)


def validated_path(raw: str) -> str:
    try:
        return wg.validate_path(raw)
    except wg.PathRefused as exc:
        metrics.GATEWAY_REFUSED_TOTAL.labels(path="invalid", reason="invalid_path").inc()
        if exc.denied:
            raise _refuse(403, "path_not_reachable", exc.reason) from None
        raise _refuse(400, "invalid_path", exc.reason) from None


def query_pairs(request: HttpRequest) -> list[tuple[str, str]]:
    """Return the caller's query parameters (token parameters are dropped later)."""
    pairs = [(k, v) for k, values in request.GET.lists() for v in values]
    if len(pairs) > MAX_QUERY_PARAMS:
        raise _refuse(400, "invalid_query", f"At most {MAX_QUERY_PARAMS} query parameters.")
    if any(_CONTROL.search(k) or _CONTROL.search(v) for k, v in pairs):
        raise _refuse(400, "invalid_query", "Query parameters hold no control characters.")
    return pairs


def json_body(request: HttpRequest) -> bytes:
    """Return the POST body: a JSON object of at most WECOM_GATEWAY_MAX_JSON_BYTES."""
    if request.content_type not in ("application/json", ""):
        raise _refuse(
            415,
            "unsupported_media_type",
            "Send JSON (application/json); only media/upload takes multipart/form-data.",
        )
    length = media.content_length(request)
    limit = settings.WECOM_GATEWAY_MAX_JSON_BYTES
    if length > limit:
        raise media.too_large(f"A JSON body may have at most {limit} bytes.")
    raw = request.read(length) if length else b""
    if len(raw) != length:
        raise _refuse(400, "invalid_json", "The body is shorter than its Content-Length.")
    if not raw.strip():
        return b"{}"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise _refuse(400, "invalid_json", "The body must be a JSON object.")
    return raw


def no_body(request: HttpRequest) -> None:
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if raw != "0" or request.META.get("HTTP_TRANSFER_ENCODING"):
        raise _refuse(400, "invalid_body", "A GET carries no body.")


def refused(refusal: quotas.Refusal) -> ApiError:
    if refusal.reason == "breaker":
        error = _refuse(
            429,
            "wecom_blocked",
            "WeCom blocked this API for the corp (45009/45033); not called until the block ends.",
            scope=refusal.scope,
            retry_after=refusal.retry_after,
        )
    else:
        error = _refuse(
            429,
            "quota_exceeded",
            f"WeCom's quota ({refusal.scope}) is used up; WeCom was not called.",
            scope=refusal.scope,
            limit=refusal.limit,
            retry_after=refusal.retry_after,
        )
    error.wait = refusal.retry_after  # Retry-After (api.exceptions._headers)
    return error


def transport_failed(exc: WeComTransportError, *, method: str, path: str) -> ApiError:
    if not exc.request_sent:
        error = _refuse(503, "wecom_unavailable", "WeCom could not be reached; nothing was sent.")
        error.wait = UNREACHABLE_RETRY_AFTER
        return error
    repeatable = wg.repeatable(method, path)
    if "Timeout" in exc.errmsg:
        message = (
            "WeCom did not answer in time (the call was retried)."
            if repeatable
            else "WeCom did not answer in time. The call may have taken effect; it was not "
            "repeated (check before sending it again)."
        )
        return _refuse(504, "wecom_timeout", message, repeatable=repeatable)
    return _refuse(502, "wecom_unavailable", "WeCom's answer was cut off.", repeatable=repeatable)


def wecom_response(answer: wg.Answer) -> HttpResponse:
    """Return WeCom's answer as the product gets it (bytes unchanged + X-Wecom-Errcode)."""
    if answer.binary:
        return media.binary_response(answer)
    if answer.status != 200:
        message = "WeCom answered with an HTTP error."
        raise _refuse(502, "wecom_http_error", message, status=answer.status)
    if answer.errcode is None:
        raise _refuse(502, "wecom_bad_answer", "WeCom's answer is not a JSON object.")
    response = HttpResponse(
        answer.body, content_type=answer.content_type or "application/json; charset=utf-8"
    )
    response["X-Wecom-Errcode"] = str(answer.errcode)
    return response


# --- OpenAPI --------------------------------------------------------------------------------

WECOM_PATH = OpenApiParameter(
    "wecom_path",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=r"^[A-Za-z0-9_]{1,64}(/[A-Za-z0-9_]{1,64}){0,7}$",
    description="WeCom API path under /cgi-bin/, e.g. user/get or externalcontact/batch/"
    "get_by_user; it must match one of the client's allowed patterns",
)
_ANSWER = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="WeCom's answer, unchanged (errcode included; header X-Wecom-Errcode). "
    "media/get answers with the file's bytes instead.",
    examples=[
        OpenApiExample(
            "user/get",
            value={
                "errcode": 0,
                "errmsg": "ok",
                "userid": "woAbCdEfGhIjKlMnOpQrStUvWxYz0123",
                "department": [1],
                "open_userid": "woAbCdEfGhIjKlMnOpQrStUvWxYz4567",
            },
            response_only=True,
            status_codes=["200"],
        ),
        OpenApiExample(
            "WeCom refused (40003)",
            value={"errcode": 40003, "errmsg": "invalid userid, hint: [1767261600_1_abc]"},
            response_only=True,
            status_codes=["200"],
        ),
    ],
)
_ERRORS = {
    400: ("invalid_path", "The path, query or body is malformed (nothing was sent)."),
    401: ("authentication_failed", "Missing, invalid, expired or revoked API key."),
    403: ("path_not_allowed", "The path is outside the client's allowlist, or never reachable."),
    404: ("not_found", "Not found, or outside the client's scope (one answer for both)."),
    409: ("authorization_inactive", "The tenant's authorization is not active."),
    411: ("length_required", "A POST needs a Content-Length."),
    413: ("body_too_large", "The body is over the limit (JSON, or WeCom's media limits)."),
    415: ("unsupported_media_type", "JSON, or multipart/form-data for media/upload."),
    429: ("quota_exceeded", "A WeCom quota is used up or WeCom blocked the API: Retry-After."),
    500: ("internal_error", "Internal server error."),
    502: ("wecom_http_error", "WeCom answered with something that is not its JSON."),
    503: ("credential_unavailable", "No corp token or WeCom unreachable now: Retry-After."),
    504: ("wecom_timeout", "WeCom did not answer in time; a non-repeatable call was not retried."),
}


def _error_responses() -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(
            ErrorSerializer,
            description=text,
            examples=[
                OpenApiExample(
                    code,
                    value={"error": {"code": code, "message": text, "details": {}}},
                    response_only=True,
                    status_codes=[str(status)],
                )
            ],
        )
        for status, (code, text) in _ERRORS.items()
    }


_REQUEST = {
    "application/json": OpenApiTypes.OBJECT,
    "multipart/form-data": {
        "type": "object",
        "properties": {"media": {"type": "string", "format": "binary"}},
    },
}
_REQUEST_EXAMPLE = OpenApiExample(
    "message/send",
    value={"touser": "woAbCdEf", "msgtype": "text", "agentid": 1000001, "text": {"content": "hi"}},
    request_only=True,
    media_type="application/json",
)


# --- the view ---------------------------------------------------------------------------------


@extend_schema(tags=["wecom gateway"])
class WeComGatewayApi(TenantScopedApi):
    """Call a WeCom corp API of the tenant through the platform (docs/gateway.md).

    WeCom's ``/cgi-bin/<wecom_path>`` is called with the tenant's corp token (third-party
    or 代开发, whichever the tenant is); query parameters (minus any ``access_token``)
    and the JSON body are passed through, WeCom's JSON comes back unchanged with
    ``X-Wecom-Errcode``. Token errors are refreshed and retried once, -1 up to three
    times; quotas answer 429 before WeCom does.
    """

    audit_action = "wecom.call"
    write_actions = {"POST": "wecom.call"}
    # No HEAD (Django would map it to get() and forward a HEAD to WeCom), no PUT/DELETE.
    http_method_names = ["get", "post", "options"]

    def audit_detail(self) -> dict:
        return getattr(self, "_gateway", {})

    @extend_schema(
        operation_id="wecom_gateway_get",
        parameters=[*TENANT, WECOM_PATH],
        responses={200: _ANSWER, **_error_responses()},
    )
    def get(self, request, suite_id: str, corpid: str, wecom_path: str):
        return self._forward(request._request, wecom_path)

    @extend_schema(
        operation_id="wecom_gateway_post",
        parameters=[*TENANT, WECOM_PATH],
        request=_REQUEST,
        examples=[_REQUEST_EXAMPLE],
        responses={200: _ANSWER, **_error_responses()},
    )
    def post(self, request, suite_id: str, corpid: str, wecom_path: str):
        return self._forward(request._request, wecom_path)

    def _forward(self, request: HttpRequest, raw_path: str) -> HttpResponse:
        self._gateway: dict = {"path": None}
        path = validated_path(raw_path)
        self._gateway["path"] = path
        tenant = self.tenant  # out of scope: 404, whatever else is wrong
        if not policy.allowed(self.principal.client.wecom_paths, path):
            metrics.GATEWAY_REFUSED_TOTAL.labels(
                path=wg.path_label(path), reason="not_allowed"
            ).inc()
            raise _refuse(403, "path_not_allowed", "This client may not call this WeCom path.")
        call = forward.GatewayCall(tenant, request.method, path, query_pairs(request))
        if request.method == "POST" and path == media.UPLOAD_PATH:
            media_type = dict(call.params).get("type", "")
            if media_type not in wg.MEDIA_LIMITS:
                raise _refuse(400, "invalid_media_type", "type is image, voice, video or file.")
            call.upload = media.read_upload(request, media_type)
        elif request.method == "POST":
            call.json_body = json_body(request)
        else:
            no_body(request)
        self._gateway["bytes_in"] = call.upload.size if call.upload else len(call.json_body or b"")
        try:
            outcome = forward.call_wecom(call)
        except forward.GatewayRefused as exc:
            raise refused(exc.refusal) from None
        except WeComTransportError as exc:
            self._gateway["error"] = "transport"
            raise transport_failed(exc, method=request.method, path=path) from None
        answer = outcome.answer
        self._gateway.update(
            errcode=answer.errcode,
            attempts=outcome.attempts,
            token_refreshed=outcome.token_refreshed,
            duration_ms=outcome.duration_ms,
            bytes_out=_bytes_out(answer),
        )
        return wecom_response(answer)


def _bytes_out(answer: wg.Answer) -> int | None:
    if answer.binary:
        declared = answer.headers.get("content-length", "")
        return int(declared) if declared.isdigit() else None
    return len(answer.body)
