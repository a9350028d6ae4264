"""One error shape for the whole API: ``{"error": {"code", "message", "details"}}``.

``exception_handler`` is DRF's EXCEPTION_HANDLER. It maps DRF's own errors, WeCom
errors (502 with the errcode; 503 when WeCom is unreachable, busy or rate-limiting),
credential and license errors, and anything unexpected (500, no internals: the
traceback goes to the log with the request id, never to the client).
"""

from __future__ import annotations

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from licensing.services import LicenseBatchFailed
from licensing.services import LicenseError
from tenants.credentials import AuthorizationInactive
from tenants.credentials import CredentialBackoff
from tenants.credentials import CredentialUnavailable
from tenants.services import InstallLinkInvalid
from wecom.errors import ErrorKind
from wecom.errors import WeComError

logger = logging.getLogger(__name__)

NOT_FOUND_MESSAGE = "Not found."
# Seconds a client should wait before retrying when WeCom is busy or limiting us.
WECOM_RETRY_AFTER = 30


class ApiError(exceptions.APIException):
    """An error with an explicit code, message and details (raised by our views)."""

    def __init__(self, *, status_code: int, code: str, message: str, details=None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details or {}


class TenantNotFound(exceptions.NotFound):
    """Out of scope or non-existent: one answer for both (no existence oracle)."""

    default_detail = NOT_FOUND_MESSAGE


def error_body(code: str, message: str, details=None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _drf_code(exc: exceptions.APIException) -> str:
    codes = {
        exceptions.NotAuthenticated: "not_authenticated",
        exceptions.AuthenticationFailed: "authentication_failed",
        exceptions.PermissionDenied: "permission_denied",
        exceptions.NotFound: "not_found",
        exceptions.MethodNotAllowed: "method_not_allowed",
        exceptions.NotAcceptable: "not_acceptable",
        exceptions.UnsupportedMediaType: "unsupported_media_type",
        exceptions.Throttled: "rate_limited",
        exceptions.ParseError: "parse_error",
        exceptions.ValidationError: "invalid",
    }
    for cls, code in codes.items():
        if isinstance(exc, cls):
            return code
    return getattr(exc, "default_code", None) or "error"


def _message(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "The request is invalid."
    if isinstance(exc, exceptions.NotFound):
        return NOT_FOUND_MESSAGE  # one text for every 404, whatever was not found
    if isinstance(exc, exceptions.Throttled):
        return "Rate limit exceeded."
    detail = exc.detail
    if isinstance(detail, list | dict):
        return str(exc.default_detail)
    return str(detail)


def _headers(exc: exceptions.APIException) -> dict[str, str]:
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(1, math.ceil(exc.wait)))
    return headers


def _wecom_response(exc: WeComError, view) -> Response:
    """Map a WeCom error by what the caller should do next (status family) and keep
    WeCom's errcode in ``details``.

    503: transient (transport, busy, rate-limited, no suite ticket yet): retry later.
    409: the corp is gone (dissolved, de-authorized): do not retry.
    422: WeCom refused what the client sent (a view that passes client input to WeCom,
         e.g. a buyer_userid, an OAuth code, a license rule): fix the input.
    502: any other refusal: a failure between the platform and WeCom.
    """
    details = {"errcode": exc.errcode, "kind": str(exc.kind)}
    if exc.kind in (ErrorKind.TRANSPORT, ErrorKind.RETRY, ErrorKind.BACK_OFF, ErrorKind.TICKET):
        code = "wecom_unavailable" if exc.kind == ErrorKind.TRANSPORT else "wecom_busy"
        return Response(
            error_body(code, "WeCom is unavailable or busy; retry later.", details),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(WECOM_RETRY_AFTER)},
        )
    # errmsg is WeCom's text, already scrubbed of every value we sent (wecom.client).
    details["errmsg"] = exc.errmsg
    if exc.kind == ErrorKind.CORP_GONE:
        http_status = status.HTTP_409_CONFLICT
    elif exc.kind == ErrorKind.PERMANENT and getattr(view, "wecom_input", False):
        http_status = status.HTTP_422_UNPROCESSABLE_ENTITY
    else:
        http_status = status.HTTP_502_BAD_GATEWAY
    message = f"WeCom refused the request (errcode {exc.errcode})."
    return Response(error_body("wecom_error", message, details), status=http_status)


def exception_handler(exc: Exception, context: dict) -> Response:
    set_rollback()  # under ATOMIC_REQUESTS, an error answer must not commit half a write
    if isinstance(exc, Http404):
        exc = TenantNotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApiError):
        return Response(
            error_body(exc.error_code, str(exc.detail), exc.details),
            status=exc.status_code,
            headers=_headers(exc),
        )
    if isinstance(exc, exceptions.APIException):
        details = exc.detail if isinstance(exc, exceptions.ValidationError) else {}
        if isinstance(details, list):
            details = {"non_field_errors": details}
        return Response(
            error_body(_drf_code(exc), _message(exc), details),
            status=exc.status_code,
            headers=_headers(exc),
        )
    if isinstance(exc, WeComError):
        logger.warning("WeCom error in API request: %s", exc)
        return _wecom_response(exc, context.get("view"))
    if isinstance(exc, AuthorizationInactive):
        return Response(
            error_body("authorization_inactive", "The tenant's authorization is not active."),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, CredentialBackoff):
        # A remembered failure: no WeCom call was made; retry when the backoff ends.
        logger.warning("credential in backoff in API request: %s", exc)
        return Response(
            error_body(
                "credential_unavailable",
                "No credential is available now; retry later.",
                {"flagged": exc.flagged, "errcode": exc.errcode},
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, CredentialUnavailable):
        logger.warning("credential unavailable in API request: %s", exc)
        return Response(
            error_body("credential_unavailable", "No credential is available now; retry later."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(WECOM_RETRY_AFTER)},
        )
    if isinstance(exc, InstallLinkInvalid):
        return Response(error_body("invalid", str(exc)), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, LicenseBatchFailed):
        return Response(
            error_body(
                "license_batch_failed",
                "WeCom accepted no item of the batch.",
                {"errors": _batch_errors(exc.batch)},
            ),
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    if isinstance(exc, LicenseError):
        return Response(error_body("license_conflict", str(exc)), status=status.HTTP_409_CONFLICT)
    # Unexpected: log it (with the request id, by the logging filters), say nothing.
    logger.error("unhandled error in API request", exc_info=exc)
    return Response(
        error_body("internal_error", "Internal server error."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _batch_errors(batch) -> list[dict]:
    return [
        {"item": e.item, "errcode": e.errcode, "errmsg": e.errmsg}
        for e in batch.errors.all()[:1000]
    ]
