"""`GET /api/health`: is the control plane up, and can it reach what it needs? For the out-of-band canary and
load balancers: no authentication, no detail beyond up/down per dependency (nothing an outsider could use), 200
when the database answers, 503 otherwise."""

import logging
from typing import Any

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.envelope import envelope, trace_id_of
from core.schema import errors as documented
from policies.selectors import gate_heartbeats

log = logging.getLogger(__name__)


class HealthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    # Never refused for others' traffic: behind an ingress every client shares one address, and a 429 here would
    # page on-call through the canary. Bound floods at the ingress (docs/access.md, "Brakes on guessing").
    throttle_classes: list[Any] = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.ChoiceField(choices=["ok"]),
                    "checks": serializers.DictField(help_text="database: ok, gates, unverified_gates"),
                },
            ),
            **documented(503),
        },
        summary="Health: the database, Redis and live gates (for the canary; no authentication)",
    )
    def get(self, request: Request) -> Response:
        checks: dict[str, Any] = {}
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:
            log.error("health: the database is unreachable: %r", exc)
            checks["database"] = "unreachable"
        beats = gate_heartbeats()  # empty when Redis is away (logged there)
        checks["gates"] = len(beats.live)  # verified heartbeats only: the gate Redis password cannot add one
        checks["unverified_gates"] = len(beats.unverified)
        if checks["database"] == "ok":
            return Response({"status": "ok", "checks": checks})
        # An error like every other: `success` false with a code, and what was checked still in `data`.
        degraded = {"status": "degraded", "checks": checks}
        response = Response(
            envelope(trace_id_of(request), degraded, ("SERVICE_UNAVAILABLE", "the database is unreachable")), status=503
        )
        response.envelope_ready = True  # type: ignore[attr-defined]
        return response
