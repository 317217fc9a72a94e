"""The Strategist's settings (the human-set envelope, which binds agents too, the narrower auto-approval
envelope, the on/off switch) and its cycles.

The envelope ships empty; the first time it is read with a policy active, an envelope no officer has touched is
seeded from the officers' baseline (its global ceilings and confidence floor), and admin says so until an officer
reviews and saves it.

A `Cycle` row is written in the same transaction as the proposal it made, with the thought it owes the audit
store; the thought is then written there and `thought_stored_at` set. If the audit store is away, the row stays
pending and `flush_thoughts` (a beat task) writes it later: no thought is lost, none is written twice (the
store keeps one per `thought_id`)."""

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from cio_kernel.policy.envelope import CEILINGS, AutoApprovalEnvelope, StrategistEnvelope
from cio_kernel.policy.spec import TradingState

# The envelope's fields, edited here and checked by `cio_kernel.policy.envelope` (one definition of a breach).
CEILING_FIELDS = CEILINGS


def _default_auto_states() -> list[str]:
    return [TradingState.REDUCING.value]


class StrategistSettings(models.Model):
    """One row (id 1). Risk officers edit it in admin; every change is kept as a `SettingsChange`."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    enabled = models.BooleanField(default=True, help_text="Run reasoning cycles (scheduled and triggered)")
    max_order_notional_usd = models.FloatField(null=True, blank=True, help_text="ceiling; empty: no ceiling")
    max_order_quantity = models.FloatField(null=True, blank=True)
    max_symbol_exposure_usd = models.FloatField(null=True, blank=True)
    max_total_exposure_usd = models.FloatField(null=True, blank=True)
    max_leverage = models.PositiveIntegerField(null=True, blank=True)
    max_daily_loss_usd = models.FloatField(null=True, blank=True)
    max_drawdown_pct = models.FloatField(null=True, blank=True, help_text="fraction, e.g. 0.2")
    min_confidence_floor = models.FloatField(
        null=True, blank=True, help_text="the global minimum confidence may not go below this"
    )
    forbidden_states = models.JSONField(
        default=list, blank=True, help_text='states the Strategist may never set, e.g. ["halted"]'
    )
    auto_approve_tightening = models.BooleanField(
        default=False,
        help_text="Approve, under the authority of the officer who turns this on, Strategist proposals that "
        "provably only tighten the active policy (activation stays a separate step)",
    )
    auto_approve_authorised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    # The auto-approval envelope: narrower than the envelope above (a proposal must be inside both). A global
    # trading-state change and any allow- or deny-list change are never approved unseen, whatever these say.
    auto_approve_min_fraction = models.FloatField(
        default=0.5,
        help_text="auto-approval: no max_* limit may be cut below this fraction of the officers' baseline (0-1]",
    )
    auto_approve_max_min_confidence = models.FloatField(
        default=0.9, help_text="auto-approval: no min_confidence above this (0-1)"
    )
    auto_approve_states = models.JSONField(
        default=_default_auto_states,
        blank=True,
        help_text='auto-approval: states it may set on a strategy or symbol (never the global one), e.g. ["reducing"]',
    )
    seeded_from_version = models.PositiveIntegerField(
        null=True, blank=True, editable=False, help_text="the officers' baseline the envelope was seeded from"
    )
    seeded_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Strategist settings and envelope"
        verbose_name_plural = "Strategist settings and envelope"

    def __str__(self) -> str:
        return "Strategist settings"

    @classmethod
    def current(cls) -> "StrategistSettings":
        row, _ = cls.objects.get_or_create(id=1)
        if row.seeded_at is None and row.updated_by_id is None and row.envelope_is_empty():
            row = row._seeded()
        return row

    def envelope_is_empty(self) -> bool:
        return (
            all(getattr(self, name) is None for name in CEILING_FIELDS)
            and self.min_confidence_floor is None
            and not self.forbidden_states
        )

    @property
    def awaiting_review(self) -> bool:
        """Seeded by the system and not yet saved by an officer."""
        return self.seeded_at is not None and self.updated_by_id is None

    def _seeded(self) -> "StrategistSettings":
        """Fill an untouched, empty envelope from the officers' baseline: its global ceilings and confidence floor
        (a limit the baseline leaves unset stays without a ceiling; the baseline rule still holds it there). A
        conditional update, so two processes seeding at once write it once."""
        from policies.selectors import active_version, baseline_version

        active = active_version()
        if active is None:
            return self
        baseline = baseline_version(active)
        rules = baseline.parsed_spec.global_rules
        values: dict[str, Any] = {name: getattr(rules, name) for name in CEILING_FIELDS}
        values["min_confidence_floor"] = rules.min_confidence
        empty = {f"{name}__isnull": True for name in CEILING_FIELDS}
        StrategistSettings.objects.filter(
            id=self.id, seeded_at__isnull=True, updated_by__isnull=True, min_confidence_floor__isnull=True, **empty
        ).update(**values, seeded_from_version=baseline.version, seeded_at=timezone.now())
        return StrategistSettings.objects.get(id=self.id)

    def envelope(self) -> StrategistEnvelope:
        return StrategistEnvelope.model_validate(
            {
                **{name: getattr(self, name) for name in CEILING_FIELDS},
                "min_confidence_floor": self.min_confidence_floor,
                "forbidden_states": frozenset(TradingState(s) for s in self.forbidden_states or ()),
            },
            strict=False,
        )

    def auto_envelope(self) -> AutoApprovalEnvelope:
        return AutoApprovalEnvelope.model_validate(
            {
                "min_fraction_of_baseline": self.auto_approve_min_fraction,
                "max_min_confidence": self.auto_approve_max_min_confidence,
                "states": frozenset(TradingState(s) for s in self.auto_approve_states or ()),
            },
            strict=False,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            **{name: getattr(self, name) for name in CEILING_FIELDS},
            "min_confidence_floor": self.min_confidence_floor,
            "forbidden_states": sorted(self.forbidden_states or ()),
            "auto_approve_tightening": self.auto_approve_tightening,
            "auto_approve_min_fraction": self.auto_approve_min_fraction,
            "auto_approve_max_min_confidence": self.auto_approve_max_min_confidence,
            "auto_approve_states": sorted(self.auto_approve_states or ()),
        }


class SettingsChange(models.Model):
    """Who changed the Strategist's settings, from what, to what, and why."""

    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    before = models.JSONField()
    after = models.JSONField()
    reason = models.TextField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"settings changed by {self.by} at {self.at:%Y-%m-%d %H:%M}"


class Outcome(models.TextChoices):
    PROPOSED = "proposed", "Proposed a version"
    AUTO_APPROVED = "auto_approved", "Proposed; approved as a pure tightening"
    AMENDED = "amended", "Amended its proposal still awaiting review"
    NO_CHANGE = "no_change", "No change needed"
    DUPLICATE = "duplicate", "Same as a pending proposal"
    OUTSIDE_ENVELOPE = "outside_envelope", "Refused: outside the envelope"
    INVALID = "invalid", "Refused: not a valid policy"
    NO_POLICY = "no_policy", "No active policy to reason about"


class CycleRequest(models.Model):
    """A cycle somebody or something asked for, recorded by the asker before the task is queued: the admin's
    *Run a cycle now* (the officer, from the request's own session) or the listener (a trigger and its detail,
    derived from its inputs). The task carries only this row's id; the worker takes the kind, the detail and who
    asked from here, and runs each row once (`consumed_at`). The broker's identity cannot write the database, so
    a message claiming an officer or a trigger proves nothing (docs/strategist.md, "Who asked")."""

    id = models.CharField(primary_key=True, max_length=32, editable=False)
    kind = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    via = models.CharField(max_length=20, help_text="admin, listener")
    requested_at = models.DateTimeField(auto_now_add=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        by = f" by {self.requested_by}" if self.requested_by_id else ""
        return f"{self.kind} cycle requested via {self.via}{by} at {self.requested_at:%Y-%m-%d %H:%M:%S}"


class Anomaly(models.Model):
    """Something that only a holder of a component's credentials could have done: a cycle task nobody recorded,
    a lock or debounce key that would never expire or was not ours, a cached input whose seal does not verify.
    One row per kind, counted (a flood costs updates, not rows); the control plane's watch raises an alert for
    every count it has not alerted yet (`watchdog.py`)."""

    kind = models.CharField(max_length=40, unique=True)
    count = models.PositiveBigIntegerField(default=0)
    alerted_count = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    last_detail = models.JSONField(default=dict, blank=True, help_text="our own words, never the message's text")

    class Meta:
        ordering = ["-last_seen"]
        verbose_name_plural = "anomalies"

    def __str__(self) -> str:
        return f"{self.kind}: {self.count}"


class Cycle(models.Model):
    cycle_id = models.CharField(max_length=32, unique=True, help_text="also the thought's id")
    trigger = models.CharField(max_length=40)
    trigger_detail = models.JSONField(default=dict, blank=True)
    request = models.OneToOneField(
        CycleRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="cycle", editable=False
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    brain = models.CharField(max_length=16)
    model = models.CharField(max_length=200)
    fallback_reason = models.TextField(blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    based_on_version = models.PositiveIntegerField(null=True)
    proposal = models.ForeignKey(
        "policies.PolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="strategist_cycles"
    )
    rationale = models.TextField(blank=True)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    duration_ms = models.IntegerField()
    trace_id = models.CharField(max_length=32)
    thought = models.JSONField(help_text="the thought as written to the audit store")
    thought_stored_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"cycle {self.cycle_id[:8]} ({self.trigger}): {self.outcome}"
