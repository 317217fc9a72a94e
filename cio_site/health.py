"""`GET /api/health`: is the control plane up, and can it reach what it needs? For the out-of-band canary and
load balancers: no authentication, no detail beyond up/down per dependency (nothing an outsider could use), 200
when the database answers, 503 otherwise."""

import logging
from typing import Any

from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from policies.selectors import gate_heartbeats

log = logging.getLogger(__name__)


class HealthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]
    # Never refused for others' traffic: behind an ingress every client shares one address, and a 429 here would
    # page on-call through the canary. Bound floods at the ingress (docs/access.md, "Brakes on guessing").
    throttle_classes: list[Any] = []

    @extend_schema(summary="Health: the database, Redis and live gates (for the canary; no authentication)")
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
        healthy = checks["database"] == "ok"
        return Response({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)
