"""REST endpoints for the audit trail: `/api/audit`, `/api/audit/<decision_id>`, `/api/trace/<trace_id>`,
`/api/incidents` (with similarity search). Read-only; the policy viewer permission; the SPEC §4 envelope."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audit import incidents, selectors
from audit.presentation import decision_detail
from audit.store import get_store
from policies import errors
from policies.api.views import PolicyApiView

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
    OpenApiParameter("cursor", str, description="next_cursor of the previous page"),
    OpenApiParameter("limit", int, description="1–500, default 50"),
]


def _query(request: Request) -> Any:
    try:
        return selectors.decision_query(request.query_params)
    except selectors.QueryError as exc:
        raise serializers.ValidationError({exc.field: [exc.message]}) from exc


class DecisionListView(PolicyApiView):
    @extend_schema(parameters=_FILTER_PARAMS, summary="Gate decisions, newest first, cursor-paginated")
    def get(self, request: Request) -> Response:
        return Response(selectors.decision_page(_query(request)))


class DecisionDetailView(PolicyApiView):
    @extend_schema(summary="One decision: the intent, every reason, the policy behind it, the chain link")
    def get(self, request: Request, decision_id: str) -> Response:
        record = get_store().get_decision(decision_id)
        if record is None:
            raise errors.NotFoundError(f"no decision {decision_id!r} in the audit store")
        context = selectors.policy_context(record)
        return Response({**decision_detail(record), "policy": selectors.policy_context_dict(context)})


class TraceView(PolicyApiView):
    @extend_schema(summary="A trace followed: decision → policy version → thought → approval and activation")
    def get(self, request: Request, trace_id: str) -> Response:
        found = selectors.trace_dict(trace_id)
        if found is None:
            raise errors.NotFoundError(f"no decision with trace id {trace_id!r} in the audit store")
        return Response(found)


class IncidentListView(PolicyApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("similar_to", str, description="an incident id: the incidents most like it"),
            OpenApiParameter("text", str, description="free text: the incidents most like this description"),
            OpenApiParameter("kind", str),
            OpenApiParameter("limit", int, description="1–100, default 20"),
        ],
        summary="Incidents, newest first, or the most similar to one incident or a description",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        limit = params.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise serializers.ValidationError({"limit": ["must be between 1 and 100"]})
        kind = params.get("kind") or None
        try:
            if params.get("similar_to") or params.get("text"):
                found = incidents.similar(
                    incident_id=params.get("similar_to"), text=params.get("text"), kind=kind, limit=int(limit)
                )
                return Response({"incidents": incidents.scored_dicts(found, digits=6)})
        except incidents.UnknownIncidentError as exc:
            raise errors.NotFoundError(str(exc)) from exc
        recent = get_store().recent_incidents(int(limit) if kind is None else 500)
        recent = [i for i in recent if kind is None or i.kind == kind][: int(limit)]
        return Response({"incidents": [incidents.as_dict(i) for i in recent]})
