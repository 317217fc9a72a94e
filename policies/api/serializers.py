from typing import Any

from rest_framework import serializers

from cio_kernel.policy.spec import TradingState
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


class RequiredReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=10_000)


class TradingStateSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(choices=["global", "strategy", "symbol"])
    key = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    state = serializers.ChoiceField(choices=[s.value for s in TradingState])
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
