"""Request id for every request: taken from a sane ``X-Request-ID`` or generated."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest
from django.http import HttpResponse

from wecom_provider.observability.context import REQUEST_ID_HEADER
from wecom_provider.observability.context import is_valid_request_id
from wecom_provider.observability.context import log_context
from wecom_provider.observability.context import new_request_id


class RequestIdMiddleware:
    """Set the request id for the request's log lines and echo it in the response.

    A load balancer or a calling product may send ``X-Request-ID`` to correlate its logs
    with ours; one that is too long or carries other characters than ``[A-Za-z0-9._-]`` is
    replaced by a generated id rather than trusted. Place it first so that early answers
    (the HTTPS redirect, a throttled login) carry the header too.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER)
        request_id = incoming if is_valid_request_id(incoming) else new_request_id()
        request.request_id = request_id
        # Clear the tenant ids too: a thread serves many requests one after another.
        with log_context(
            request_id=request_id, parent_request_id=None, suite_id=None, corp_id=None
        ):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response
