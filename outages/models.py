"""What the watch remembers of each gate, and the incident cases officers work through.

The audit store's incidents are append-only records (SPEC §5: no API updates them), made for "what happened last
time it looked like this?". A case's status and owner change, so they live here, in the control plane's database,
keyed by the incident's id: the record stays as it was written, the case says where the work on it stands."""

from django.conf import settings
from django.db import models


class GateWatch(models.Model):
    """A gate the watch has heard (a verified heartbeat): when last, and since when it has not been running the
    active policy. Rows stay when a gate goes: a gate that stops beating is exactly what the watch is for."""

    gate_id = models.CharField(max_length=200, unique=True)
    last_beat_at = models.DateTimeField(help_text="the `ts` of the newest verified heartbeat seen")
    policy_version = models.IntegerField(null=True, help_text="what that heartbeat reported")
    unconfirmed_since = models.DateTimeField(
        null=True, help_text="the first pass that saw it not running the active version (reset once it does)"
    )

    def __str__(self) -> str:
        return self.gate_id


class IncidentCase(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    incident_id = models.CharField(max_length=64, unique=True, help_text="the audit store's incident")
    kind = models.CharField(max_length=40)
    gate_id = models.CharField(max_length=200)
    severity = models.CharField(max_length=16)
    title = models.CharField(max_length=300)
    since = models.DateTimeField(help_text="silent since (its last verified heartbeat), or unconfirmed since")
    detected_at = models.DateTimeField()
    recovered_at = models.DateTimeField(null=True, help_text="the first heartbeat that ended it")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(null=True)
    resolved_at = models.DateTimeField(null=True)
    # Null on a resolved case: resolved by the watch, on recovery.
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    alert_id = models.CharField(max_length=64, blank=True)
    alert_outcome = models.CharField(max_length=300, blank=True, help_text='"sent", or why not (retried)')

    class Meta:
        constraints = [
            # One case per outage, however many passes run at once: the outage's key is its gate, its kind and
            # when it began (a value every pass reads from the same `GateWatch` row).
            models.UniqueConstraint(fields=["gate_id", "kind", "since"], name="outage_case_once"),
        ]
        indexes = [models.Index(fields=["status", "-detected_at"], name="case_status_detected")]

    def __str__(self) -> str:
        return self.title

    @property
    def duration_s(self) -> float | None:
        """How long the outage lasted, once it ended."""
        return (self.recovered_at - self.since).total_seconds() if self.recovered_at else None
