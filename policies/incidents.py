"""Control-plane acts that become incidents in the audit trail: recorded once the act is committed (a rolled-back
act is not one). Policies owns its events, so it says which are incidents and writes them into audit."""

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit import incidents
from audit.records import Incident
from policies.models import PolicyEvent


@receiver(post_save, sender=PolicyEvent, dispatch_uid="audit-incident-from-policy-event")
def record_incident(sender: type[PolicyEvent], instance: PolicyEvent, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    incident = from_policy_event(instance)
    if incident is not None:
        transaction.on_commit(lambda: incidents.record(incident))


def from_policy_event(event: PolicyEvent) -> Incident | None:
    """A control-plane act worth remembering, or None."""
    kind = str(event.kind)
    actor = event.actor.get_username() if event.actor is not None else "system"
    version = event.policy.version if event.policy is not None else None
    detail = {"by": actor, "reason": event.reason, "policy_version": version, **(event.detail or {})}
    if kind == "trading_state":
        scope, key, target = detail.get("scope"), detail.get("key"), detail.get("to")
        title = f"trading state {scope} {key}: {detail.get('from')} → {target} by {actor}"
        return incidents.make(
            f"event-{event.pk}",
            incidents.TRADING_STATE,
            f"{title}: {event.reason}",
            event.at,
            _plain(detail),
            strategy_id=key if scope == "strategy" else None,
            trace_id=event.trace_id or None,
        )
    if kind == "rolled_back":
        title = f"rolled back to v{detail.get('restored')} by {actor}: {event.reason}"
        return incidents.make(
            f"event-{event.pk}", incidents.ROLLBACK, title, event.at, _plain(detail), trace_id=event.trace_id or None
        )
    if kind == "latch_released":
        title = f"latch {detail.get('latch_id')} released by {actor}: {event.reason}"
        return incidents.make(
            f"event-{event.pk}",
            incidents.LATCH_RELEASE,
            title,
            event.at,
            _plain(detail),
            trace_id=event.trace_id or None,
        )
    return None


def _plain(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if isinstance(v, str | int | float | bool | type(None) | list | dict)}
