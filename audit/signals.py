"""Control-plane acts that become incidents: recorded once the act is committed (a rolled-back act is not one)."""

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from audit import incidents
from policies.models import PolicyEvent


@receiver(post_save, sender=PolicyEvent, dispatch_uid="audit-incident-from-policy-event")
def record_incident(sender: type[PolicyEvent], instance: PolicyEvent, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    incident = incidents.from_policy_event(instance)
    if incident is not None:
        transaction.on_commit(lambda: incidents.record(incident))
