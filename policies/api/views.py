"""REST endpoints under /api/. Reads need the view permission; every change is delegated to
`policies.services`, which enforces roles and four-eyes. Responses are wrapped in the envelope of docs/contracts.md."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core import errors
from core.api import ApiView
from core.envelope import trace_id_of
from core.numbers import whole_number
from core.schema import errors as documented
from policies import impact, services
from policies.api.serializers import (
    GateStatusSerializer,
    ImpactPreviewSerializer,
    ImpactRequestSerializer,
    LatchListSerializer,
    LatchReleaseSerializer,
    LatchSerializer,
    PolicyApproveSerializer,
    PolicyDiffSerializer,
    PolicyEventSerializer,
    PolicyVersionSerializer,
    PolicyVersionSummarySerializer,
    ProposeSerializer,
    RequiredReasonSerializer,
    TradingStateSerializer,
    TradingStatesSerializer,
)
from policies.diff import described, diff_specs
from policies.models import PolicyEvent, Status
from policies.selectors import active_version, gate_status, policy_version, policy_versions, risk_latch_state


class ActivePolicyView(ApiView):
    @extend_schema(responses={200: PolicyVersionSerializer, **documented(404)}, summary="The active policy version")
    def get(self, request: Request) -> Response:
        active = active_version()
        if active is None:
            raise errors.NotFoundError("no policy is active")
        return Response(PolicyVersionSerializer(active).data)


class VersionListView(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=[s.value for s in Status], required=False)],
        responses=PolicyVersionSummarySerializer(many=True),
        summary="Policy versions, newest first",
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status")
        if status and status not in Status.values:
            raise serializers.ValidationError({"status": [f"must be one of {', '.join(Status.values)}"]})
        return Response(PolicyVersionSummarySerializer(policy_versions(status, 200), many=True).data)


class VersionDetailView(ApiView):
    @extend_schema(responses=PolicyVersionSerializer, summary="One policy version with its spec")
    def get(self, request: Request, version: int) -> Response:
        return Response(PolicyVersionSerializer(policy_version(version)).data)


class VersionDiffView(ApiView):
    @extend_schema(
        parameters=[
            OpenApiParameter("against", str, required=False, description="a version number, or 'active' (the default)")
        ],
        responses=PolicyDiffSerializer,
        summary="Human-readable diff from another version (default: the active one) to this version, each change "
        "marked tightens / loosens / neutral",
    )
    def get(self, request: Request, version: int) -> Response:
        target = policy_version(version)
        against = request.query_params.get("against", "active")
        if against == "active":
            base = active_version()
        elif (number := whole_number(against)) is not None:
            base = policy_version(number)
        else:
            raise serializers.ValidationError({"against": ["a version number or 'active'"]})
        changes = diff_specs(base.parsed_spec if base else None, target.parsed_spec)
        return Response(
            {
                "from_version": base.version if base else None,
                "to_version": target.version,
                "changes": [c.as_dict() for c in changes],
                **described(changes),
                "text": [str(c) for c in changes],
            }
        )


class ProposeView(ApiView):
    @extend_schema(
        request=ProposeSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                pattern=r"^[\x21-\x7e]{1,128}$",
                description="Any 1-128 visible ASCII characters naming this proposal: sent again with the same spec, "
                "the answer is the version it first made (200); with another spec, 409 IDEMPOTENCY_KEY_REUSED",
            )
        ],
        responses={201: PolicyVersionSerializer, 200: PolicyVersionSerializer, **documented(409)},
        summary="Propose a new policy version (risk officers and agents). 201 with the new version; 200 with the "
        "existing one when this request was already answered (the same `Idempotency-Key`), or when an agent's spec "
        "is identical to an open proposal of its own on the same active version",
    )
    def post(self, request: Request) -> Response:
        data = self.validated(ProposeSerializer, request)
        policy, created = services.submit(
            spec=data["spec"],
            by=request.user,
            rationale=data["rationale"],
            thought_id=data["thought_id"],
            idempotency_key=request.headers.get("Idempotency-Key", ""),
            trace_id=trace_id_of(request),
        )
        return Response(PolicyVersionSerializer(policy).data, status=201 if created else 200)


class ApproveView(ApiView):
    @extend_schema(
        request=PolicyApproveSerializer,
        responses={200: PolicyVersionSerializer, **documented(409)},
        summary="Approve a proposed version (a risk officer other than the proposer)",
    )
    def post(self, request: Request, version: int) -> Response:
        data = self.validated(PolicyApproveSerializer, request)
        policy = services.approve(
            policy_version(version),
            by=request.user,
            reason=data["reason"],
            trace_id=trace_id_of(request),
            checksum=data["checksum"],
        )
        return Response(PolicyVersionSerializer(policy).data)


class RejectView(ApiView):
    @extend_schema(
        request=RequiredReasonSerializer,
        responses={200: PolicyVersionSerializer, **documented(409)},
        summary="Reject a proposed version, with a reason",
    )
    def post(self, request: Request, version: int) -> Response:
        data = self.validated(RequiredReasonSerializer, request)
        policy = services.reject(
            policy_version(version), by=request.user, reason=data["reason"], trace_id=trace_id_of(request)
        )
        return Response(PolicyVersionSerializer(policy).data)


class ActivateView(ApiView):
    @extend_schema(
        request=None,
        responses={200: PolicyVersionSerializer, **documented(409, 503)},
        summary="Activate an approved version: Redis check-and-set, then cio.strategist.update",
    )
    def post(self, request: Request, version: int) -> Response:
        policy = services.activate(policy_version(version), by=request.user, trace_id=trace_id_of(request))
        return Response(PolicyVersionSerializer(policy).data)


class RollbackView(ApiView):
    @extend_schema(
        request=RequiredReasonSerializer,
        responses={201: PolicyVersionSerializer, **documented(409, 503)},
        summary="Activate this earlier version's spec again, as a new version",
    )
    def post(self, request: Request, version: int) -> Response:
        data = self.validated(RequiredReasonSerializer, request)
        policy = services.rollback(
            policy_version(version), by=request.user, reason=data["reason"], trace_id=trace_id_of(request)
        )
        return Response(PolicyVersionSerializer(policy).data, status=201)


class TradingStateView(ApiView):
    @extend_schema(
        responses={200: TradingStatesSerializer, **documented(404)},
        summary="Trading states of the active policy (global, per strategy, per symbol)",
    )
    def get(self, request: Request) -> Response:
        active = active_version()
        if active is None:
            raise errors.NotFoundError("no policy is active")
        spec = active.parsed_spec
        return Response(
            {
                "policy_version": active.version,
                "global": spec.global_rules.trading_state.value,
                "strategies": {k: v.trading_state.value for k, v in spec.strategies.items() if v.trading_state},
                "symbols": {k: v.trading_state.value for k, v in spec.symbols.items() if v.trading_state},
            }
        )

    @extend_schema(
        request=TradingStateSerializer,
        responses={
            201: PolicyVersionSerializer,
            202: PolicyVersionSerializer,
            200: PolicyVersionSerializer,
            **documented(404, 409, 503),
        },
        summary="Kill switch: set a trading state (agents may only tighten; releasing needs a risk officer, and "
        "releasing the global state a second one). 201 with the new version; 202 with a `proposed` version when a "
        "global release waits for a second officer (who confirms it with the same request); 200 with the live one "
        "when nothing changes; with Redis down a tightening is delivered to the gates by signed NATS notice "
        "(`pending_state` set) and written later.",
    )
    def post(self, request: Request) -> Response:
        data = self.validated(TradingStateSerializer, request)
        policy, created = services.set_trading_state(
            scope=data["scope"],
            key=data["key"],
            state=data["state"],
            by=request.user,
            reason=data["reason"],
            trace_id=trace_id_of(request),
        )
        status = 202 if policy.status == Status.PROPOSED else 201 if created else 200
        return Response(PolicyVersionSerializer(policy).data, status=status)


class GateStatusView(ApiView):
    @extend_schema(
        responses=GateStatusSerializer,
        summary="Live gates, from their verified heartbeats (and the entries that did not verify)",
    )
    def get(self, request: Request) -> Response:
        return Response(gate_status())


class LatchView(ApiView):
    @extend_schema(
        parameters=[OpenApiParameter("all", bool, required=False, description="include released latches")],
        responses={200: LatchListSerializer, **documented(503)},
        summary="Risk latches (drawdown, daily loss) held in Redis, newest first",
    )
    def get(self, request: Request) -> Response:
        everything = request.query_params.get("all", "").lower() in ("1", "true", "yes")
        try:
            latches, problems = risk_latch_state(active_only=not everything)
        except Exception as exc:
            raise errors.StoreUnavailableError(f"Redis is unreachable: {exc!r}") from exc
        return Response({"latches": [dict(r.model_dump(mode="json"), id=r.id) for r in latches], "problems": problems})


class LatchReleaseView(ApiView):
    @extend_schema(
        request=LatchReleaseSerializer,
        responses={200: LatchSerializer, **documented(404, 409, 503)},
        summary="Release a risk latch (risk officers only, with a reason)",
    )
    def post(self, request: Request) -> Response:
        data = self.validated(LatchReleaseSerializer, request)
        released = services.release_latch(
            latch=data["latch"], by=request.user, reason=data["reason"], trace_id=trace_id_of(request)
        )
        return Response(dict(released.model_dump(mode="json"), id=released.id))


class PolicyEventListView(ApiView):
    @extend_schema(responses=PolicyEventSerializer(many=True), summary="Control-plane events, newest first")
    def get(self, request: Request) -> Response:
        events = PolicyEvent.objects.select_related("actor", "policy")[:200]
        return Response(PolicyEventSerializer(events, many=True).data)


class ImpactView(ApiView):
    @extend_schema(
        request=ImpactRequestSerializer,
        responses={201: ImpactPreviewSerializer, 202: ImpactPreviewSerializer, **documented(404, 503)},
        summary="Preview this version's impact: replay the audited intents of a window (default the last 24 h) under "
        "it and under the active policy, and show the decisions that change (docs/impact-preview.md). 201 with the "
        "result when the window was small enough to replay at once; 202 while a worker replays it (poll GET).",
    )
    def post(self, request: Request, version: int) -> Response:
        data = self.validated(ImpactRequestSerializer, request)
        preview = impact.start(
            by=request.user,
            candidate=policy_version(version),
            window_hours=data.get("window_hours"),
            since=data.get("since"),
        )
        done = preview.state in ("done", "failed")
        return Response(impact.summary(preview), status=201 if done else 202)

    @extend_schema(
        responses={200: ImpactPreviewSerializer, **documented(404)},
        summary="This version's latest impact preview: its progress, then the difference",
    )
    def get(self, request: Request, version: int) -> Response:
        preview = impact.latest_for(policy_version(version))
        if preview is None:
            raise errors.NotFoundError(f"no impact preview of version {version}: POST to start one")
        return Response(impact.summary(preview))
