"""The product event feed: ``GET /api/v1/events/?after=<cursor>&type=…``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from api import selectors
from api.examples import examples_for
from api.serializers import EventOutput
from api.serializers import EventPageOutput
from api.serializers import EventQuery
from api.views.base import ApiView
from api.views.base import error_responses


@extend_schema(tags=["events"])
class EventListApi(ApiView):
    """Events in the client's scope after a cursor, oldest first (stable id order).

    Start with ``after=0`` (or omit it); keep the returned ``next_cursor`` and pass it
    as ``after`` next time. Events appear after a short settle delay (see README).
    """

    @extend_schema(
        operation_id="events_list",
        parameters=[EventQuery],
        responses={200: EventPageOutput, **error_responses(400)},
        examples=examples_for("events_list"),
    )
    def get(self, request):
        query = EventQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        events = list(
            selectors.events_visible(
                client=self.principal.client, after=after, types=query.validated_data.get("type")
            )[: limit + 1]
        )
        has_more = len(events) > limit
        events = events[:limit]
        return Response(
            {
                "results": EventOutput(events, many=True).data,
                "next_cursor": str(events[-1].id if events else after),
                "has_more": has_more,
            }
        )
