"""Policy versions and the control-plane events around them.

A version's spec is validated by the gate's own `PolicySpec` (one schema, never forked) and is immutable once
proposed: a change is a new version. The one exception is the Strategist's own open proposal while no one has
reviewed it: its next proposal amends it in place, the earlier content kept in an `amended` event
(`policies.services.amend`, docs/strategist.md). Status moves only through `policies.services`.
"""

import hashlib
import secrets
import uuid
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from pydantic import ValidationError as SpecValidationError

from cio_kernel.policy.document import policy_checksum
from cio_kernel.policy.spec import PolicySpec, schema_problems

MAX_SPEC_BYTES = 128 * 1024  # about 3,000 symbol scopes: every gate parses and checks it in about 20 ms


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROPOSED = "proposed", "Proposed"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    SUPERSEDED = "superseded", "Superseded"
    REJECTED = "rejected", "Rejected"


class ProposerKind(models.TextChoices):
    HUMAN = "human", "Human"
    AGENT = "agent", "Agent"
    STRATEGIST = "strategist", "Strategist"


def parse_spec(raw: Any) -> PolicySpec:
    """The spec as the gate will read it; a Django ValidationError listing every problem otherwise. Bounded:
    every gate parses the whole policy, so its compact JSON may be at most `MAX_SPEC_BYTES`."""
    try:
        encoded = raw if isinstance(raw, str | bytes) else orjson.dumps(raw)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise ValidationError([f"spec: not representable as JSON ({exc})"]) from exc
    if len(encoded) > MAX_SPEC_BYTES * 4:  # far over even before compaction: refuse without parsing
        raise ValidationError([f"spec: {len(encoded):,} bytes; a policy may be at most {MAX_SPEC_BYTES:,} bytes"])
    try:
        spec = PolicySpec.parse(encoded)
    except SpecValidationError as exc:
        raise ValidationError(schema_problems(exc)) from exc
    size = len(compact_spec_json(spec))
    if size > MAX_SPEC_BYTES:
        raise ValidationError([f"spec: {size:,} bytes; a policy may be at most {MAX_SPEC_BYTES:,} bytes"])
    return spec


def compact_spec(spec: PolicySpec) -> dict[str, Any]:
    """The spec as stored: unset limits left out (same checksum; a policy that names many symbols stays small)."""
    return {"schema_version": spec.schema_version, **spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)}


def compact_spec_json(spec: PolicySpec) -> bytes:
    return orjson.dumps(compact_spec(spec))


# Who did what to a version, and why: shown by the admin detail page and the API alike.
HISTORY_FIELDS = (
    "based_on",
    "proposer_kind",
    "proposed_by",
    "proposed_at",
    "rationale",
    "thought_id",
    "decided_by",
    "decided_at",
    "decision_reason",
    "activated_by",
    "activated_at",
    "superseded_at",
)


class PolicyVersion(models.Model):
    version = models.PositiveIntegerField(unique=True, editable=False)
    spec = models.JSONField(help_text="The full PolicySpec (see docs/policy.md)")
    checksum = models.CharField(max_length=80, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT, db_index=True)
    based_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    proposer_kind = models.CharField(max_length=12, choices=ProposerKind.choices, default=ProposerKind.HUMAN)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="proposed_policies"
    )
    proposed_at = models.DateTimeField(null=True, blank=True)
    rationale = models.TextField(blank=True, help_text="Why this change: shown to the approving officer")
    thought_id = models.CharField(max_length=64, blank=True, help_text="The Strategist thought that produced it")

    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="decided_policies"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)

    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="activated_policies"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    # A tightened trading state delivered to the gates by signed NATS notice while Redis was away: still to be
    # written to Redis (by the next control-plane act or `manage.py reconcile_policies`). {"scope", "key", "state"}
    pending_state = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        permissions = [
            ("propose_policyversion", "Can propose a policy version"),
            ("approve_policyversion", "Can approve or reject a policy version"),
            ("activate_policyversion", "Can activate or roll back a policy version"),
            ("set_trading_state", "Can set any trading state, including releasing to active"),
            ("tighten_trading_state", "Can make a trading state stricter (never release it)"),
        ]

    def __str__(self) -> str:
        return f"v{self.version} ({self.status})"

    @property
    def parsed_spec(self) -> PolicySpec:
        return parse_spec(self.spec)

    def clean(self) -> None:
        spec = parse_spec(self.spec)
        self.spec = compact_spec(spec)
        self.checksum = policy_checksum(spec)

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = PolicyVersion.objects.filter(pk=self.pk).values("spec", "status").first()
            if stored is not None and stored["status"] != Status.DRAFT and stored["spec"] != self.spec:
                raise ValidationError("a proposed policy version is immutable: propose a new version instead")
        super().save(*args, **kwargs)


class PolicyEvent(models.Model):
    """Every control-plane act on policies: proposals, decisions, activations, trading-state changes."""

    class Kind(models.TextChoices):
        PROPOSED = "proposed"
        APPROVED = "approved"
        REJECTED = "rejected"
        ACTIVATED = "activated"
        ROLLED_BACK = "rolled_back"
        TRADING_STATE = "trading_state"
        ACTIVATION_FAILED = "activation_failed"
        LATCH_RELEASED = "latch_released"
        RECONCILED = "reconciled"  # the database adopted what Redis holds (after a failure, or a restore)
        ANOMALY = "anomaly"  # Redis held a document this control plane did not sign (replaced), or a mismatch
        AMENDED = "amended"  # the Strategist rewrote its unreviewed proposal; `detail["previous"]` holds what it was

    kind = models.CharField(max_length=24, choices=Kind.choices)
    policy = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    detail = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} v{self.policy.version if self.policy else '-'} by {self.actor or 'system'}"


class ProposalKey(models.Model):
    """An idempotency key a client sent with a proposal (REST `Idempotency-Key`, MCP `idempotency_key`): the same
    key from the same account always answers with the version it first made, and with a different spec is
    refused. Unique per account, so two requests racing with one key make one version."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=128)
    policy = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    checksum = models.CharField(max_length=80, help_text="the canonical checksum of the spec sent with the key")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="policies_proposal_key_per_user")]

    def __str__(self) -> str:
        return f"{self.user} key {self.key[:16]} → v{self.policy.version}"


class ActivationLock(models.Model):
    """One row, locked (SELECT ... FOR UPDATE) by every activation so they run one at a time: the database's
    single active version and Redis's `policy:active` then always agree."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)

    def __str__(self) -> str:
        return "activation lock"


class ApiToken(models.Model):
    """An API token, stored only as its SHA-256 (the key itself is shown once, when issued). A leaked database
    then holds nothing a client could present."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=8, editable=False, help_text="the key's first characters, to tell tokens apart"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"{self.user} token {self.prefix}…"

    @staticmethod
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user: Any) -> tuple["ApiToken", str]:
        """A new token for `user`: the stored row and the key, which exists nowhere else afterwards."""
        key = secrets.token_hex(20)
        return cls.objects.create(user=user, key_hash=cls.digest(key), prefix=key[:8]), key


class ImpactPreview(models.Model):
    """One impact preview (docs/impact-preview.md): a candidate policy replayed against the active one over a window
    of audited intents, its progress while it runs, and the difference it found. Kept so the page (and REST, MCP)
    can poll it; the candidate is a saved version or, for an agent checking before it proposes, an unsaved spec."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    candidate = models.ForeignKey(PolicyVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    candidate_spec = models.JSONField(help_text="The spec replayed as the candidate (the version's, or unsaved)")
    active_version = models.PositiveIntegerField(help_text="The active version it is compared with")
    since = models.DateTimeField()
    until = models.DateTimeField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent of the window replayed")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["candidate", "-created_at"], name="impact_candidate_created")]

    def __str__(self) -> str:
        return f"impact preview {self.id} ({self.state})"
