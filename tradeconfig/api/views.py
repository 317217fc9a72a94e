"""REST under `/api/config`: the trade engine's configuration (read through to the engine) and changes to it
(propose, approve and push, reject), in the envelope. Permissions and four eyes live in `services.py`."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ApiView
from core.envelope import trace_id_of
from core.schema import errors as documented
from tradeconfig import services
from tradeconfig.api.responses import ConfigChangeSerializer, ConfigChangeWithLiveSerializer, EngineConfigSerializer
from tradeconfig.models import ChangeStatus

SCOPE_PARAMETERS = [
    OpenApiParameter("symbol", str, required=False, description="a symbol; none for the global configuration"),
    OpenApiParameter("side", str, enum=["LONG", "SHORT"], required=False),
]


class ProposeChangeSerializer(serializers.Serializer):
    symbol = serializers.CharField(required=False, allow_blank=True, max_length=40)
    side = serializers.ChoiceField(choices=["LONG", "SHORT"], required=False, allow_blank=True)
    parameters = serializers.DictField(help_text='only what changes, e.g. {"leverage": 5}')
    rationale = serializers.CharField(max_length=10_000)


class DecisionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=10_000)


class ApproveSerializer(DecisionSerializer):
    expected_live = serializers.DictField(
        required=False, help_text="the `live` values the approver was shown; refused if the engine has moved since"
    )


class ConfigView(ApiView):
    @extend_schema(
        parameters=SCOPE_PARAMETERS,
        responses={200: EngineConfigSerializer, **documented(503)},
        summary="The trade engine's configuration for a scope (resolved)",
    )
    def get(self, request: Request) -> Response:
        config = services.current(request.user, request.query_params.get("symbol"), request.query_params.get("side"))
        return Response(config.model_dump(mode="json"))


class ChangeListView(ApiView):
    @extend_schema(
        operation_id="config_change_list",
        parameters=[OpenApiParameter("status", str, enum=list(ChangeStatus.values), required=False)],
        responses=ConfigChangeSerializer(many=True),
        summary="Configuration changes, newest first",
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status")
        if status and status not in ChangeStatus.values:
            raise serializers.ValidationError({"status": [f"must be one of {', '.join(ChangeStatus.values)}"]})
        return Response(services.recent(status, 200))

    @extend_schema(
        request=ProposeChangeSerializer,
        responses={201: ConfigChangeSerializer, **documented(409, 503)},
        summary="Propose a configuration change (officers and agents)",
    )
    def post(self, request: Request) -> Response:
        data: dict[str, Any] = self.validated(ProposeChangeSerializer, request)
        change = services.propose(
            by=request.user,
            parameters=data["parameters"],
            rationale=data["rationale"],
            symbol=data.get("symbol"),
            side=data.get("side"),
            trace_id=trace_id_of(request),
        )
        return Response(services.as_dict(change), status=201)


class ChangeDetailView(ApiView):
    @extend_schema(
        responses=ConfigChangeWithLiveSerializer,
        summary="One configuration change, with the engine's live values of its parameters (`live`)",
    )
    def get(self, request: Request, change_id: int) -> Response:
        return Response(services.with_live(services.get(change_id)))


class ApproveChangeView(ApiView):
    @extend_schema(
        request=ApproveSerializer,
        responses={200: ConfigChangeSerializer, **documented(409, 503)},
        summary="Approve (another risk officer) and push to the trade engine",
    )
    def post(self, request: Request, change_id: int) -> Response:
        data = self.validated(ApproveSerializer, request)
        change = services.approve(
            services.get(change_id),
            by=request.user,
            reason=data.get("reason", ""),
            expected_live=data.get("expected_live"),
        )
        return Response(services.as_dict(change))


class RejectChangeView(ApiView):
    @extend_schema(
        request=DecisionSerializer,
        responses={200: ConfigChangeSerializer, **documented(409)},
        summary="Reject a proposed configuration change (a reason is required)",
    )
    def post(self, request: Request, change_id: int) -> Response:
        reason = self.validated(DecisionSerializer, request).get("reason", "")
        return Response(services.as_dict(services.reject(services.get(change_id), by=request.user, reason=reason)))


class ApplyChangeView(ApiView):
    @extend_schema(
        request=None,
        responses={200: ConfigChangeSerializer, **documented(409, 503)},
        summary="Push an approved change again (only while the live values are the approved ones)",
    )
    def post(self, request: Request, change_id: int) -> Response:
        return Response(services.as_dict(services.apply(services.get(change_id), by=request.user)))


class ReconcileChangeView(ApiView):
    @extend_schema(
        request=None,
        responses={200: ConfigChangeSerializer, **documented(409, 503)},
        summary="Settle a push with an unknown outcome from the engine's live values",
    )
    def post(self, request: Request, change_id: int) -> Response:
        return Response(services.as_dict(services.reconcile(services.get(change_id), by=request.user)))
