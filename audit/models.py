"""The Django-database backend of the audit store (the embedded default): one table per SPEC collection.

Audit records are immutable here at every level: the models refuse `save()` of an existing row, `delete()` and
queryset `update()`/`delete()`; the database itself refuses an UPDATE or DELETE (and on PostgreSQL a TRUNCATE)
through triggers created by the migrations (audit/triggers.py). None of that stops someone with the database's
admin rights, which is what the hash chain, the gates' signed checkpoints and `audit_verify` are for."""

from typing import Any

from django.db import models


class ImmutableRecordError(Exception):
    pass


class _AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableRecordError("audit records are never updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableRecordError("audit records are never deleted")


class _AppendOnly(models.Model):
    objects = _AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRecordError(f"{type(self).__name__} rows are never changed once stored")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableRecordError(f"{type(self).__name__} rows are never deleted")


class Decision(_AppendOnly):
    decision_id = models.CharField(max_length=64, unique=True)
    ts = models.DateTimeField()
    gate_id = models.CharField(max_length=200)
    subject = models.CharField(max_length=300)
    strategy_id = models.CharField(max_length=200, null=True)  # as the strategy spelled it
    strategy_key = models.CharField(max_length=200, null=True)  # what the gate compared: filters group by it
    symbol = models.CharField(max_length=64, null=True)
    action = models.CharField(max_length=32, null=True)
    intent_id = models.CharField(max_length=200, null=True)
    signal_id = models.CharField(max_length=200, null=True)
    decision = models.CharField(max_length=16)
    reason_codes = models.CharField(max_length=1000, blank=True)  # space-separated, in the event's order
    policy_version = models.BigIntegerField(null=True)
    policy_checksum = models.CharField(max_length=80, null=True)
    trace_id = models.CharField(max_length=32)
    span_id = models.CharField(max_length=16)
    latency_us = models.BigIntegerField()
    trading_state = models.CharField(max_length=16, null=True)
    snapshot_ts = models.DateTimeField(null=True)
    audit_subject = models.CharField(max_length=200)
    payload = models.TextField()  # the event exactly as published (UTF-8 JSON): what the chain hash covers
    chain = models.CharField(max_length=160, null=True)
    seq = models.BigIntegerField(null=True)
    prev_hash = models.CharField(max_length=64, null=True)
    hash = models.CharField(max_length=64, null=True)
    trace_key = models.BigIntegerField(null=True)  # lookup_key(trace_id): indexed instead of the id (django_rows)
    signal_key = models.BigIntegerField(null=True)  # lookup_key(signal_id)
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "audit_logs"
        ordering = ["-ts", "-decision_id"]
        # Ascending (read backwards for newest first): new entries land at the right-hand end, where SQLite leaves
        # full pages full (migration 0010).
        indexes = [
            models.Index(fields=["ts", "decision_id"], name="audit_ts"),
            models.Index(fields=["strategy_key", "ts", "decision_id"], name="audit_strategy_key_ts"),
            models.Index(fields=["strategy_key", "symbol", "ts", "decision_id"], name="audit_strategy_key_symbol_ts"),
            models.Index(fields=["symbol", "ts", "decision_id"], name="audit_symbol_ts"),
            models.Index(fields=["decision", "ts", "decision_id"], name="audit_decision_ts"),
            models.Index(fields=["policy_version", "ts", "decision_id"], name="audit_version_ts"),
            models.Index(fields=["gate_id", "ts", "decision_id"], name="audit_gate_ts"),
            models.Index(fields=["trace_key"], name="audit_trace_key"),
            models.Index(fields=["signal_key"], name="audit_signal_key"),
            models.Index(fields=["chain", "seq"], name="audit_chain_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.strategy_id}/{self.symbol} {self.decision_id}"


class Checkpoint(_AppendOnly):
    """A gate's signed checkpoint of its chain (cio_kernel.audit_checkpoint), copied from `CIO_AUDIT_CHECKPOINTS`
    by the ingest: the anchors retention leaves behind. One per chain position (the first one stored)."""

    chain = models.CharField(max_length=160)
    seq = models.BigIntegerField()
    payload = models.TextField()  # the checkpoint exactly as published: what its signature is checked on
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "audit_checkpoints"
        constraints = [models.UniqueConstraint(fields=["chain", "seq"], name="audit_checkpoint_once")]


class DecisionReason(_AppendOnly):
    """One row per reason code of a decision, so "every decision refused for X" is an index range."""

    decision_id = models.CharField(max_length=64)
    code = models.CharField(max_length=64)
    ts = models.DateTimeField()

    class Meta:
        db_table = "audit_log_reasons"
        constraints = [models.UniqueConstraint(fields=["decision_id", "code"], name="audit_reason_once")]
        indexes = [models.Index(fields=["code", "ts", "decision_id"], name="audit_reason_ts")]


class DecisionMinute(models.Model):
    """How many serving-gate decisions one minute holds per strategy key, per symbol and per reason code, each by
    decision: the statistics' rollup (audit/store/rollups.py), kept by the ingest in the transaction that inserts
    the decisions. Not an audit record and not append-only: its count is raised by each ingest batch (an
    upsert), lowered by retention and recomputed by `audit_rollups_rebuild`, so it has no immutability guard;
    the decisions are the evidence."""

    minute = models.DateTimeField()
    kind = models.CharField(max_length=8)  # strategy, symbol or reason
    key = models.CharField(max_length=200)  # the strategy key, symbol or reason code; "" for none
    decision = models.CharField(max_length=16)
    n = models.BigIntegerField()

    class Meta:
        db_table = "audit_decision_minutes"
        constraints = [models.UniqueConstraint(fields=["minute", "kind", "key", "decision"], name="audit_minute_once")]


class QuarantinedAuditEvent(_AppendOnly):
    """A message on the audit stream that was not an audit event: kept as it arrived, for a human to look at."""

    stream_seq = models.BigIntegerField(unique=True)
    audit_subject = models.CharField(max_length=300)
    payload = models.BinaryField()
    headers = models.JSONField(default=dict)
    problem = models.TextField()
    received_at = models.DateTimeField()

    class Meta:
        db_table = "audit_quarantine"


class Thought(_AppendOnly):
    thought_id = models.CharField(max_length=64, unique=True)
    ts = models.DateTimeField()
    model = models.CharField(max_length=200)
    inputs_summary = models.JSONField(default=dict)
    output = models.JSONField(default=dict)
    rationale = models.TextField(blank=True)
    proposed_version = models.BigIntegerField(null=True)
    trigger = models.CharField(max_length=40, blank=True, default="")
    brain = models.CharField(max_length=16, blank=True, default="")
    trace_id = models.CharField(max_length=32, null=True)
    prompt_hash = models.CharField(max_length=64, null=True)
    prompt_tokens = models.IntegerField(default=0)
    completion_tokens = models.IntegerField(default=0)
    validation = models.JSONField(default=dict)
    fallback_reason = models.TextField(null=True)
    duration_ms = models.IntegerField(null=True)

    class Meta:
        db_table = "thoughts"
        indexes = [models.Index(fields=["-ts"], name="thought_ts")]


class Incident(_AppendOnly):
    incident_id = models.CharField(max_length=64, unique=True)
    ts = models.DateTimeField()
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=300)
    detail = models.JSONField(default=dict)
    strategy_id = models.CharField(max_length=200, null=True)
    symbol = models.CharField(max_length=64, null=True)
    trace_id = models.CharField(max_length=32, null=True)
    embedding = models.JSONField()  # unit-length float vector (audit.embedding)

    class Meta:
        db_table = "incidents"
        indexes = [
            models.Index(fields=["kind", "-ts"], name="incident_kind_ts"),
            models.Index(fields=["-ts"], name="incident_ts"),
        ]


class Alert(_AppendOnly):
    alert_id = models.CharField(max_length=64, unique=True)
    ts = models.DateTimeField()
    severity = models.CharField(max_length=16)
    source = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    detail = models.JSONField(default=dict)
    trace_id = models.CharField(max_length=32, null=True)
    received_at = models.DateTimeField()
    duplicate_of = models.CharField(max_length=64, null=True)

    class Meta:
        db_table = "alerts"
        indexes = [
            models.Index(fields=["-received_at", "-alert_id"], name="alert_received"),
            models.Index(fields=["severity", "-received_at"], name="alert_severity_received"),
        ]


class AlertEvent(_AppendOnly):
    """What happened to an alert after it arrived: each delivery attempt, acknowledgement and escalation."""

    event_id = models.CharField(max_length=64, unique=True)
    alert_id = models.CharField(max_length=64)
    ts = models.DateTimeField()
    kind = models.CharField(max_length=20)
    channel = models.CharField(max_length=40, null=True)
    attempt = models.IntegerField(default=0)
    outcome = models.CharField(max_length=20, null=True)
    detail = models.JSONField(default=dict)

    class Meta:
        db_table = "alert_events"
        indexes = [models.Index(fields=["alert_id", "ts"], name="alert_event_alert_ts")]


class ToolCallRow(_AppendOnly):
    """One MCP tool call (audit.records.ToolCall)."""

    call_id = models.CharField(max_length=64, unique=True)
    ts = models.DateTimeField()
    user = models.CharField(max_length=150)
    tool = models.CharField(max_length=100)
    arguments = models.JSONField(default=dict)
    outcome = models.CharField(max_length=10)
    error_code = models.CharField(max_length=40, null=True)
    message = models.TextField(blank=True)
    trace_id = models.CharField(max_length=32)
    duration_ms = models.IntegerField()

    class Meta:
        db_table = "mcp_calls"
        indexes = [
            models.Index(fields=["-ts", "-call_id"], name="mcp_call_ts"),
            models.Index(fields=["user", "-ts"], name="mcp_call_user_ts"),
        ]
