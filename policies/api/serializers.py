from typing import Any

from rest_framework import serializers

from cio_kernel.policy.spec import TradingState
from policies.diff import Direction
from policies.models import HISTORY_FIELDS, PolicyEvent, PolicyVersion


def _user(user: Any) -> str | None:
    return user.get_username() if user is not None else None


class PolicyVersionSerializer(serializers.ModelSerializer):
    proposed_by = serializers.SerializerMethodField()
    decided_by = serializers.SerializerMethodField()
    activated_by = serializers.SerializerMethodField()
    based_on = serializers.SerializerMethodField()

    class Meta:
        model = PolicyVersion
        fields = ["version", "status", "checksum", "spec", *HISTORY_FIELDS, "pending_state", "created_at"]

    def get_proposed_by(self, obj: PolicyVersion) -> str | None:
        return _user(obj.proposed_by)

    def get_decided_by(self, obj: PolicyVersion) -> str | None:
        return _user(obj.decided_by)

    def get_activated_by(self, obj: PolicyVersion) -> str | None:
        return _user(obj.activated_by)

    def get_based_on(self, obj: PolicyVersion) -> int | None:
        return obj.based_on.version if obj.based_on else None


class PolicyVersionSummarySerializer(PolicyVersionSerializer):
    class Meta(PolicyVersionSerializer.Meta):
        fields = [f for f in PolicyVersionSerializer.Meta.fields if f != "spec"]


class ProposeSerializer(serializers.Serializer):
    spec = serializers.JSONField(help_text="A complete PolicySpec document")
    rationale = serializers.CharField(allow_blank=True, required=False, default="", max_length=10_000)
    thought_id = serializers.CharField(allow_blank=True, required=False, default="", max_length=64)

    def validate_spec(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("spec must be a JSON object")
        return value


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(allow_blank=True, required=False, default="", max_length=10_000)


class PolicyApproveSerializer(ReasonSerializer):
    checksum = serializers.CharField(
        allow_blank=True,
        required=False,
        default="",
        max_length=80,
        help_text="the version's checksum as you reviewed it: refused (409) if the version changed since",
    )


class RequiredReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=10_000)


DIRECTIONS = [d.value for d in Direction]
TRADING_STATES = [s.value for s in TradingState]  # also the schema's TradingStateEnum (cio_site/settings.py)


class TradingStateSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["global", "strategy", "symbol"])
    key = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    state = serializers.ChoiceField(choices=TRADING_STATES)
    reason = serializers.CharField(max_length=10_000)


class LatchReleaseSerializer(serializers.Serializer):
    latch = serializers.CharField(max_length=300, help_text="the latch id, e.g. drawdown:global:*")
    reason = serializers.CharField(max_length=10_000)


class PolicyEventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()

    class Meta:
        model = PolicyEvent
        fields = ["kind", "version", "actor", "reason", "detail", "trace_id", "at"]

    def get_actor(self, obj: PolicyEvent) -> str | None:
        return _user(obj.actor)

    def get_version(self, obj: PolicyEvent) -> int | None:
        return obj.policy.version if obj.policy else None


# What the views without a model answer: response shapes for the published schema (core/schema.py wraps each in
# the envelope). Nested records the gates and Redis define are objects here; their fields are theirs.
class PolicyChangeSerializer(serializers.Serializer):
    """One line of a diff (policies/diff.py `Change.as_dict`)."""

    path = serializers.CharField(help_text="dotted: global.<field>, strategies.<key>.<field>, symbols.<SYM>.<field>")
    kind = serializers.ChoiceField(choices=["added", "removed", "changed"])
    before = serializers.JSONField(allow_null=True, help_text="null when added")
    after = serializers.JSONField(allow_null=True, help_text="null when removed")
    direction = serializers.ChoiceField(
        choices=DIRECTIONS, help_text="by the exact tightening check behind auto-approval (docs/policy.md)"
    )


class DirectionCountsSerializer(serializers.Serializer):
    tightens = serializers.IntegerField(min_value=0)
    loosens = serializers.IntegerField(min_value=0)
    neutral = serializers.IntegerField(min_value=0)


class PolicyDiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField(allow_null=True, help_text="null when nothing is active")
    to_version = serializers.IntegerField()
    changes = PolicyChangeSerializer(many=True)
    counts = DirectionCountsSerializer(help_text="how many changes tighten, loosen, neither")
    summary = serializers.CharField(help_text='the counts in words, e.g. "3 tighten, 1 loosens"')
    text = serializers.ListField(child=serializers.CharField())


class TradingStatesSerializer(serializers.Serializer):
    policy_version = serializers.IntegerField()
    strategies = serializers.DictField(child=serializers.ChoiceField(choices=TRADING_STATES))
    symbols = serializers.DictField(child=serializers.ChoiceField(choices=TRADING_STATES))

    def get_fields(self) -> dict[str, Any]:
        # `global` is a Python keyword: the field is added by name.
        return {"global": serializers.ChoiceField(choices=TRADING_STATES), **super().get_fields()}


class UnverifiedGateSerializer(serializers.Serializer):
    gate_id = serializers.CharField()
    problem = serializers.CharField()
    claims = serializers.DictField(allow_null=True)


class GateStatusSerializer(serializers.Serializer):
    active_policy_version = serializers.IntegerField(allow_null=True)
    gates = serializers.ListField(child=serializers.DictField(), help_text="verified heartbeats")
    unverified_gates = UnverifiedGateSerializer(many=True)


class LatchSerializer(serializers.Serializer):
    """A latch record (cio_kernel/contracts/latch.py `LatchRecord`) with its id; its other fields are optional."""

    id = serializers.CharField(help_text="e.g. drawdown:global:*")
    kind = serializers.CharField()
    scope = serializers.CharField()
    key = serializers.CharField()
    tripped_at = serializers.FloatField(help_text="Unix seconds")
    tripped_by = serializers.CharField()
    observed = serializers.FloatField()
    limit = serializers.FloatField()
    released_at = serializers.FloatField(allow_null=True)
    released_by = serializers.CharField(allow_null=True)


class LatchListSerializer(serializers.Serializer):
    latches = LatchSerializer(many=True)
    problems = serializers.DictField(child=serializers.CharField(), help_text="records not taken, with why")


class ImpactRequestSerializer(serializers.Serializer):
    window_hours = serializers.FloatField(
        required=False,
        min_value=0.001,
        max_value=876_600,
        help_text="the last N hours (default CIO_IMPACT_WINDOW_HOURS)",
    )
    since = serializers.DateTimeField(required=False, help_text="replay everything since (instead of window_hours)")


class ImpactPreviewSerializer(serializers.Serializer):
    """An impact preview (docs/impact-preview.md): `result` once `state` is `done`."""

    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=["queued", "running", "done", "failed"])
    progress = serializers.IntegerField(min_value=0, max_value=100)
    candidate_version = serializers.IntegerField(allow_null=True, help_text="null for an unsaved spec")
    active_version = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    error = serializers.CharField(allow_null=True)
    result = serializers.DictField(allow_null=True, help_text="the difference, by strategy, symbol and reason code")
