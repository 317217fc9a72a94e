"""Response shapes of `/api/audit` and `/api/incidents` for the published schema (core/schema.py wraps each in
the envelope): what `audit.presentation` and `audit.incidents` put in `data`."""

from rest_framework import serializers


class DecisionSummarySerializer(serializers.Serializer):
    decision_id = serializers.CharField()
    ts = serializers.CharField(help_text="ISO 8601, UTC")
    gate_id = serializers.CharField()
    strategy_id = serializers.CharField(allow_null=True)
    strategy_key = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(allow_null=True)
    action = serializers.CharField(allow_null=True)
    signal_id = serializers.CharField(allow_null=True)
    decision = serializers.CharField()
    reason_codes = serializers.ListField(child=serializers.CharField())
    policy_version = serializers.IntegerField(allow_null=True)
    trace_id = serializers.CharField()
    latency_us = serializers.IntegerField()
    trading_state = serializers.CharField(allow_null=True)
    shadow = serializers.BooleanField(help_text="decided by a gate in shadow mode: never promoted, nobody answered")


class DecisionPageSerializer(serializers.Serializer):
    decisions = DecisionSummarySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True, help_text="pass as `cursor` for the next page")


class DecisionDetailSerializer(DecisionSummarySerializer):
    policy_checksum = serializers.CharField(allow_null=True)
    snapshot_ts = serializers.CharField(allow_null=True)
    chain = serializers.DictField()
    event = serializers.DictField(help_text="the decision event as the gate published it")
    policy = serializers.DictField(allow_null=True, help_text="the policy version behind the decision")


class TraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    decisions = DecisionDetailSerializer(many=True)


class IncidentSerializer(serializers.Serializer):
    incident_id = serializers.CharField()
    ts = serializers.DateTimeField()
    kind = serializers.CharField()
    title = serializers.CharField()
    detail = serializers.DictField()
    strategy_id = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(allow_null=True)
    trace_id = serializers.CharField(allow_null=True)
    similarity = serializers.FloatField(required=False, help_text="only when searching by similarity")


class IncidentListSerializer(serializers.Serializer):
    incidents = IncidentSerializer(many=True)
