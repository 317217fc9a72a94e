"""A proposed change to the trade engine's configuration, its review and what the engine answered."""

from django.conf import settings
from django.db import models


class ChangeStatus(models.TextChoices):
    PROPOSED = "proposed"
    REJECTED = "rejected"
    APPROVED = "approved"  # approved, not pushed yet
    PUSHING = "pushing"  # one push in flight (it holds the apply slot)
    APPLIED = "applied"  # approved and taken by the trade engine
    FAILED = "failed"  # approved, and the trade engine certainly did not take it (it can be applied again)
    UNKNOWN = "unknown"  # the push's outcome is unknown (a timeout): it holds the slot until reconciled
    SUPERSEDED = "superseded"  # a change proposed later for the same key was approved: never applied
    STALE = "stale"  # the live value moved away from the one it was approved against: never applied


# A change in one of these holds the single apply slot: nothing else is pushed until it is settled.
HOLDS_SLOT = (ChangeStatus.PUSHING, ChangeStatus.UNKNOWN)


class ConfigChange(models.Model):
    symbol = models.CharField(max_length=40, blank=True, help_text="empty: the global configuration")
    side = models.CharField(max_length=5, blank=True)
    parameters = models.JSONField(help_text="only the parameters this change sets")
    before = models.JSONField(default=dict, blank=True, help_text="those parameters as the engine had them")
    rationale = models.TextField()
    status = models.CharField(max_length=10, choices=ChangeStatus.choices, default=ChangeStatus.PROPOSED)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    expected = models.JSONField(
        null=True, blank=True, help_text="the live values it was approved against: a push is conditional on them"
    )
    push_started_at = models.DateTimeField(null=True, blank=True)
    # True while the change holds the apply slot, NULL otherwise: unique, so the database itself refuses a second
    # holder (NULLs never collide, on SQLite and PostgreSQL alike).
    in_flight = models.BooleanField(null=True, blank=True, unique=True, default=None)
    superseded_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    upstream_version = models.IntegerField(null=True, blank=True)
    upstream_error = models.TextField(blank=True)
    trace_id = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]

    def __str__(self) -> str:
        return f"config change {self.pk} ({self.scope_label}): {self.status}"

    @property
    def scope_label(self) -> str:
        return "global" if not self.symbol else self.symbol + (f" {self.side}" if self.side else "")
