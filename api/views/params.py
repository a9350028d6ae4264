"""OpenAPI path parameters shared by the views (patterns match the URL converters)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

SUITE_ID = OpenApiParameter(
    "suite_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=ID_PATTERN,
    description="suite_id of a third-party app or 代开发 template",
)
CORPID = OpenApiParameter(
    "corpid",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=ID_PATTERN,
    description="the corp's corpid as WeCom gives it to this provider",
)
ORDER_ID = OpenApiParameter("order_id", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=ID_PATTERN)
TENANT = [SUITE_ID, CORPID]
