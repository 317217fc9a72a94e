"""A proposed change to the trade engine's configuration, its review and what the engine answered."""

from django.conf import settings
from django.db import models


class ChangeStatus(models.TextChoices):
    PROPOSED = "proposed"
    REJECTED = "rejected"
    APPLIED = "applied"  # approved and taken by the trade engine
    FAILED = "failed"  # approved, but the trade engine did not take it (it can be applied again)


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
