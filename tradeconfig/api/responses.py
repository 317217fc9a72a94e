"""Response shapes of `/api/config…` for the published schema (core/schema.py wraps each in the envelope): what
`tradeconfig.services` puts in `data`."""

from rest_framework import serializers

from tradeconfig.models import ChangeStatus


class EngineConfigSerializer(serializers.Serializer):
    """The trade engine's answer for one scope (tradeconfig/contract.py `UpstreamConfig`; it may add fields)."""

    symbol = serializers.CharField(allow_null=True, required=False)
    side = serializers.ChoiceField(choices=["LONG", "SHORT"], allow_null=True, required=False)
    parameters = serializers.DictField()
    version = serializers.IntegerField()
    source = serializers.CharField()


class ConfigChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    scope = serializers.CharField()
    symbol = serializers.CharField(allow_null=True)
    side = serializers.CharField(allow_null=True)
    parameters = serializers.DictField()
    before = serializers.DictField()
    rationale = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ChangeStatus.choices)
    proposed_by = serializers.CharField()
    proposed_at = serializers.DateTimeField()
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_reason = serializers.CharField(allow_blank=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    expected = serializers.DictField(allow_null=True)
    superseded_by = serializers.IntegerField(allow_null=True)
    push_started_at = serializers.DateTimeField(allow_null=True)
    upstream_version = serializers.IntegerField(allow_null=True)
    upstream_error = serializers.CharField(allow_null=True)


class ConfigChangeWithLiveSerializer(ConfigChangeSerializer):
    live = serializers.DictField(allow_null=True, help_text="the engine's values of these parameters now")
    live_error = serializers.CharField(allow_null=True, help_text="why `live` is null")
