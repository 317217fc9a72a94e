"""Read-side queries for policies and gates."""

import logging

import orjson
from pydantic import ValidationError

from gate.contracts.heartbeat import GateHeartbeat
from gate.contracts.latch import LatchRecord
from policies.live import read_gate_heartbeats, read_risk_latches
from policies.models import PolicyVersion, Status

log = logging.getLogger(__name__)


def active_version(for_update: bool = False) -> PolicyVersion | None:
    query = PolicyVersion.objects.filter(status=Status.ACTIVE)
    if for_update:
        query = query.select_for_update()
    return query.order_by("-version").first()


def gate_heartbeats() -> list[GateHeartbeat]:
    """The latest heartbeat of every live gate (gates keep `gate:heartbeat:<id>` in Redis with a short TTL)."""
    try:
        raw = read_gate_heartbeats()
    except Exception as exc:
        log.warning("gate heartbeats unavailable: %r", exc)
        return []
    beats = []
    for value in raw:
        try:
            beats.append(GateHeartbeat.model_validate(orjson.loads(value)))
        except (ValidationError, orjson.JSONDecodeError):
            continue
    return sorted(beats, key=lambda b: b.gate_id)


def risk_latches(active_only: bool = True) -> list[LatchRecord]:
    """Latches held in Redis (drawdown, daily loss), newest trip first; raises when Redis is unreachable."""
    records = read_risk_latches().values()
    return sorted((r for r in records if r.active or not active_only), key=lambda r: r.tripped_at, reverse=True)
