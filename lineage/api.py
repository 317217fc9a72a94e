"""`/api/audit/<decision_id>` (one decision with the policy behind it) and `/api/trace/<trace_id>`: read-only, the
policy viewer permission, the SPEC §4 envelope."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from audit.api.responses import DecisionDetailSerializer, TraceSerializer
from audit.presentation import decision_detail
from audit.store import get_store
from core import errors
from core.api import ApiView
from core.schema import errors as documented
from lineage import selectors as lineage_selectors


class DecisionDetailView(ApiView):
    @extend_schema(
        responses={200: DecisionDetailSerializer, **documented(503)},
        summary="One decision: the intent, every reason, the policy behind it, the chain link",
    )
    def get(self, request: Request, decision_id: str) -> Response:
        record = get_store().get_decision(decision_id)
        if record is None:
            raise errors.NotFoundError(f"no decision {decision_id!r} in the audit store")
        context = lineage_selectors.policy_context(record)
        return Response({**decision_detail(record), "policy": lineage_selectors.policy_context_dict(context)})


class TraceView(ApiView):
    @extend_schema(
        responses={200: TraceSerializer, **documented(503)},
        summary="A trace followed: decision → policy version → thought → approval and activation",
    )
    def get(self, request: Request, trace_id: str) -> Response:
        found = lineage_selectors.trace_dict(trace_id)
        if found is None:
            raise errors.NotFoundError(f"no decision with trace id {trace_id!r} in the audit store")
        return Response(found)
