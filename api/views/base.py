"""Base classes of every API view: fail-closed tenant scope, audit, one error shape.

- ``ApiView``: audits every write (POST/PUT/PATCH/DELETE) and, where a view sets
  ``audit_action``, every read too (tokens, tickets); answers are never cached.
- ``SuiteScopedApi`` / ``TenantScopedApi``: resolve ``<suite_id>`` / ``<suite_id>/<corpid>``
  from the URL *within the client's scope*; anything else is the same 404 as a tenant
  that does not exist. The tenant comes from the credential's scope, never from input.
- ``TenantScopedListApi``: list views; ``get_queryset`` is final and always starts from
  ``scoped_queryset()``, which each view must define (the base raises: fail-closed).
"""

from __future__ import annotations

import logging
from functools import cached_property

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiResponse
from rest_framework import generics
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from api import selectors
from api import services
from api.authentication import ApiPrincipal
from api.examples import error_example
from api.exceptions import TenantNotFound
from api.exceptions import error_body
from api.serializers import BIGINT_MAX
from api.serializers import ErrorSerializer
from tenants.models import Authorization
from tenants.models import Suite
from wecom_provider.observability.context import log_context

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_ERROR_TEXT = {
    400: "The request is invalid (code invalid or parse_error).",
    401: "Missing, invalid, expired or revoked API key.",
    403: "The client may see this suite but not act on it as a whole.",
    404: "Not found, or outside the client's scope (one answer for both).",
    409: "The tenant's authorization is not active (or the corp is gone at WeCom), or a "
    "license rule refused the operation.",
    422: "WeCom refused what the client sent; details.errcode is WeCom's errcode (for a "
    "batch: no item was accepted).",
    429: "Rate limit exceeded; see Retry-After.",
    502: "WeCom refused the request; details.errcode is WeCom's errcode.",
    503: "WeCom or a credential is unavailable right now; see Retry-After.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """Return the documented error answers (always 401, 404, 429 and 500)."""
    wanted = sorted({401, 404, 429, 500, *codes})
    return {
        code: OpenApiResponse(
            ErrorSerializer,
            description=_ERROR_TEXT.get(code, "Internal server error."),
            examples=error_example(code),
        )
        for code in wanted
    }


class ApiView(APIView):
    """Audit and caching rules shared by every API endpoint."""

    # Set on views whose reads are audited (token and secret-adjacent reads).
    audit_action: str | None = None
    # Audit names of writes by method (every write is audited, named or not).
    write_actions: dict[str, str] = {}
    # True where the view passes client input to WeCom: WeCom's refusal is then a 422.
    wecom_input = False
    # True: the answer carries a secret; if its audit row cannot be written, refuse it.
    audit_required = False

    @property
    def principal(self) -> ApiPrincipal:
        return self.request.auth

    def dispatch(self, request, *args, **kwargs):
        # Tag the request's log lines with the tenant ids it names (ids only).
        with log_context(suite_id=kwargs.get("suite_id"), corp_id=kwargs.get("corpid")):
            return super().dispatch(request, *args, **kwargs)

    def audit_name(self, request) -> str | None:
        """Return the audit action of this request, or None when it is not audited."""
        if request.method in WRITE_METHODS:
            named = self.write_actions.get(request.method) or self.audit_action
            return named or f"{type(self).__name__}.{request.method.lower()}"
        return self.audit_action

    def audit_detail(self) -> dict:
        return getattr(self, "_audit_detail", {})

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        principal = getattr(request, "_auth", None)  # never re-run authentication here
        action = self.audit_name(request)
        # Throttled requests did nothing; logging each would let a client flood the log.
        if not isinstance(principal, ApiPrincipal) or not action or response.status_code == 429:
            return response
        try:
            services.audit_record(
                client=principal.client,
                key=principal.key,
                action=action,
                method=request.method,
                status_code=response.status_code,
                suite_id=str(self.kwargs.get("suite_id", "")),
                corpid=str(getattr(self, "_audit_corpid", None) or self.kwargs.get("corpid", "")),
                detail=self.audit_detail(),
            )
        except DatabaseError:
            logger.exception("audit row for %s could not be written", action)
            if self.audit_required and response.status_code < 400:
                # No audit row, no secret: the answer is replaced by a 503.
                response = Response(
                    error_body("audit_unavailable", "Try again shortly."), status=503
                )
                response = super().finalize_response(request, response, *args, **kwargs)
                response["Cache-Control"] = "no-store"
        return response


class SuiteScopedApi(ApiView):
    """A view under ``suites/<suite_id>/``: the suite must be visible to the client."""

    @cached_property
    def suite(self) -> Suite:
        suite = selectors.suite_visible(
            client=self.principal.client, suite_id=self.kwargs["suite_id"]
        )
        if suite is None:
            raise TenantNotFound()
        return suite

    def require_whole_suite(self) -> Suite:
        """Return the suite if the client is scoped to the whole suite, else 403 (or 404)."""
        suite = self.suite
        if not selectors.suite_granted(client=self.principal.client, suite=suite):
            raise PermissionDenied("This client is scoped to corps, not to the whole suite.")
        return suite


class TenantScopedApi(ApiView):
    """A view under ``suites/<suite_id>/corps/<corpid>/``: one tenant, in scope or 404."""

    @cached_property
    def tenant(self) -> Authorization:
        suite_id, corpid = self.kwargs["suite_id"], self.kwargs["corpid"]
        lookup = self.principal.tenant
        if lookup is not None and (lookup.suite_id, lookup.corpid) == (suite_id, corpid):
            authorization = lookup.authorization  # read with the key, same request
        else:
            authorization = selectors.authorization_visible(
                client=self.principal.client, suite_id=suite_id, corpid=corpid
            )
        if authorization is None:
            raise TenantNotFound()
        return authorization


class IdCursorPagination(CursorPagination):
    """Cursor pagination by id (stable, unique); ``?limit=`` up to 200."""

    ordering = "id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = str(cursor.position)
            if not position.isdigit() or int(position) > BIGINT_MAX:
                raise TenantNotFound(self.invalid_cursor_message)
        return cursor


class TenantScopedListApi(ApiView, generics.GenericAPIView):
    """A list view whose queryset always comes from ``scoped_queryset()``."""

    pagination_class = IdCursorPagination

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: define scoped_queryset(), not get_queryset()")

    def scoped_queryset(self):
        raise NotImplementedError(f"{type(self).__name__} must define scoped_queryset()")

    def get_queryset(self):
        return self.scoped_queryset()
