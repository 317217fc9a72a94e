"""REST endpoints for the audit trail: `/api/audit`, `/api/incidents` (with similarity search). Read-only; the policy
viewer permission; the SPEC §4 envelope. One decision with the policy behind it, and traces: `lineage.api`."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit import incidents, selectors
from audit.api.responses import DecisionPageSerializer, IncidentListSerializer
from audit.store import get_store
from core import errors
from core.api import ApiView
from core.numbers import whole_number
from core.schema import errors as documented

_FILTER_PARAMS = [
    OpenApiParameter("since", str, description="ISO 8601 time with zone, inclusive"),
    OpenApiParameter("until", str, description="ISO 8601 time with zone, exclusive"),
    OpenApiParameter("strategy_id", str),
    OpenApiParameter("symbol", str),
    OpenApiParameter("decision", str, enum=list(selectors.DECISIONS)),
    OpenApiParameter("reason_code", str, description="e.g. ORDER_NOTIONAL_EXCEEDED (docs/reason-codes.md)"),
    OpenApiParameter("policy_version", int),
    OpenApiParameter("gate_id", str),
    OpenApiParameter("trace_id", str),
    OpenApiParameter("decision_id", str),
    OpenApiParameter("signal_id", str),
    OpenApiParameter(
        "shadow", bool, description="true: shadow gates' decisions only (never promoted); false: serving gates' only"
    ),
    OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
    OpenApiParameter("limit", int, description="1–500, default 50"),
]


def _query(request: Request) -> Any:
    try:
        return selectors.decision_query(request.query_params)
    except selectors.QueryError as exc:
        raise serializers.ValidationError({exc.field: [exc.message]}) from exc


class DecisionListView(ApiView):
    @extend_schema(
        operation_id="audit_list",
        parameters=_FILTER_PARAMS,
        responses={200: DecisionPageSerializer, **documented(503)},
        summary="Gate decisions, newest first, cursor-paginated",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.decision_page(_query(request)))


class IncidentListView(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("similar_to", str, description="an incident id: the incidents most like it"),
            OpenApiParameter("text", str, description="free text: the incidents most like this description"),
            OpenApiParameter("kind", str),
            OpenApiParameter("limit", int, description="1–100, default 20"),
        ],
        responses={200: IncidentListSerializer, **documented(404, 503)},
        summary="Incidents, newest first, or the most similar to one incident or a description",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        limit = whole_number(params.get("limit", "20"))
        if limit is None or not 1 <= limit <= 100:
            raise serializers.ValidationError({"limit": ["must be between 1 and 100"]})
        kind = params.get("kind") or None
        try:
            if params.get("similar_to") or params.get("text"):
                found = incidents.similar(
                    incident_id=params.get("similar_to"), text=params.get("text"), kind=kind, limit=limit
                )
                return Response({"incidents": incidents.scored_dicts(found, digits=6)})
        except incidents.UnknownIncidentError as exc:
            raise errors.NotFoundError(str(exc)) from exc
        recent = get_store().recent_incidents(limit if kind is None else 500)
        recent = [i for i in recent if kind is None or i.kind == kind][:limit]
        return Response({"incidents": [incidents.as_dict(i) for i in recent]})
