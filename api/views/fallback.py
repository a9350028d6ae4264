"""Everything under ``/api/`` that matches no endpoint: the API's 404 (or 401) in its shape."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound

from api.views.base import ApiView


@extend_schema(exclude=True)
class NotFoundApi(ApiView):
    """Authenticates like every endpoint, so an unknown path answers 401 before 404."""

    def _not_found(self, request, *args, **kwargs):
        raise NotFound()

    get = post = put = patch = delete = head = options = _not_found
