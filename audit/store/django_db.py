"""The audit store on the Django database (SQLite embedded, PostgreSQL in production without MongoDB)."""

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Left

import audit.store.partitions as partitions
from audit import models, triggers
from audit.embedding import cosine
from audit.records import (
    ACKNOWLEDGED,
    ALERT_EVENT_FIELDS,
    ALERT_FIELDS,
    DELIVERY,
    ESCALATED,
    TOOL_CALL_FIELDS,
    AlertEvent,
    AlertRecord,
    DecisionRecord,
    Incident,
    QuarantinedEvent,
    StoredCheckpoint,
    Thought,
    ToolCall,
    thought_from,
)
from audit.store.base import StoreUnavailableError, insert_once, unavailable_on
from audit.store.decisions import MAX_PAGE, DecisionPage, DecisionQuery, DecisionStats, page_of, stats_of
from audit.store.django_rows import (
    DECISION_COLUMNS,
    MINUTE_COLUMNS,
    REASON_COLUMNS,
    add_minutes,
    count_stored,
    insert_decision_sql,
    insert_reason_sql,
    lookup_key,
    reason_rows,
    rebuild_minutes,
    row_values,
    write_rows,
)
from audit.store.rollups import MinuteCounts, first_whole_minute, rollup_chunks, stored_span
from cio_kernel.shadow import SHADOW_AUDIT_PREFIX

_log = logging.getLogger(__name__)
_PARTITIONS_EVERY_S = 3600.0  # partitions are made a week ahead (partitions.DAYS_AHEAD): hourly is plenty
_RACES = 3  # reads of a batch that another writer kept storing meanwhile, before the ingest is asked to retry

# Filters that match one column exactly (the rest: time range, cursor, reason code).
_EXACT_FILTERS = (
    "strategy_key",
    "symbol",
    "decision",
    "policy_version",
    "gate_id",
    "trace_id",
    "signal_id",
    "decision_id",
)


class DjangoAuditStore:
    name = "django"
    left_to_default: list[date] = []  # days whose rows sit in DEFAULT, so they have no partition (partitions.py)
    _partitions_due = 0.0  # when insert_decisions makes the coming days' partitions next (monotonic)

    def ensure_schema(self) -> None:
        """Migrations own the schema here; on PostgreSQL the coming days' partitions of `audit_logs` are made
        (audit/store/partitions.py): at the ingest's start, by `prepare_release`, and hourly by `insert_decisions`."""
        if connection.vendor == "postgresql":
            with (
                _unavailable("the audit database did not take the partitions"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                if partitions.is_partitioned(cursor):
                    self.left_to_default = partitions.ensure_partitions(cursor)
            if self.left_to_default:
                _log.warning(
                    "audit_logs: no partition for %s: their rows are in %s (docs/audit.md)",
                    ", ".join(map(str, self.left_to_default)),
                    partitions.DEFAULT,
                )
        self._partitions_due = time.monotonic() + _PARTITIONS_EVERY_S

    def ensure_search_index(self) -> str:
        return "none needed (similar incidents are ranked in Python)"

    # -- decisions -----------------------------------------------------------------------------------------
    def insert_decisions(self, records: Sequence[DecisionRecord]) -> int:
        if not records:
            return 0
        if time.monotonic() >= self._partitions_due:
            self.ensure_schema()
        ids = [r.decision_id for r in records]
        for _ in range(_RACES):
            with _unavailable("the audit database did not take the batch"), transaction.atomic():
                known = set(models.Decision.objects.filter(decision_id__in=ids).values_list("decision_id", flat=True))
                # A batch may repeat one. In key order: two writers storing the same decisions wait for each
                # other in one order instead of deadlocking (PostgreSQL).
                fresh = {r.decision_id: r for r in sorted(records, key=_key) if r.decision_id not in known}
                if not fresh:
                    return 0
                if _insert_rows(fresh.values()) == len(fresh):
                    # Counted in the same transaction, only what this one inserted: exactly once.
                    counts = MinuteCounts().add_records(fresh.values())
                    with _batch_cursor() as cursor:
                        types = _column_types(models.DecisionMinute, MINUTE_COLUMNS)
                        add_minutes(cursor, counts, _adapt(), "%s", types)
                    return len(fresh)
                # Another ingest process committed some of these after our read: roll back and read again, or
                # they would be counted twice.
                transaction.set_rollback(True)
        raise StoreUnavailableError("the audit database did not take the batch: other writers kept storing it")

    def quarantine(self, events: Sequence[QuarantinedEvent]) -> None:
        with _unavailable("the audit database did not take the quarantine"):
            models.QuarantinedAuditEvent.objects.bulk_create(
                [
                    models.QuarantinedAuditEvent(
                        stream_seq=e.stream_seq,
                        audit_subject=e.audit_subject,
                        payload=e.payload,
                        headers=e.headers,
                        problem=e.problem,
                        received_at=e.received_at,
                    )
                    for e in events
                ],
                ignore_conflicts=True,
            )

    def quarantined(self, limit: int = 100) -> list[QuarantinedEvent]:
        rows = models.QuarantinedAuditEvent.objects.order_by("-stream_seq")[:limit]
        return [
            QuarantinedEvent(r.stream_seq, r.audit_subject, bytes(r.payload), r.headers, r.problem, r.received_at)
            for r in rows
        ]

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        row = models.Decision.objects.filter(decision_id=decision_id).first()
        return _record(row) if row is not None else None

    def get_decisions(self, decision_ids: Sequence[str]) -> list[DecisionRecord]:
        rows = {row.decision_id: row for row in models.Decision.objects.filter(decision_id__in=list(decision_ids))}
        return [_record(rows[i]) for i in dict.fromkeys(decision_ids) if i in rows]

    def find_decisions(self, query: DecisionQuery) -> DecisionPage:
        limit = max(1, min(query.limit, MAX_PAGE))
        rows = models.Decision.objects.all()
        for field in _EXACT_FILTERS:
            value = getattr(query, field)
            if value is not None:
                rows = rows.filter(**{field: value})
        for field, key in (("trace_id", "trace_key"), ("signal_id", "signal_key")):
            value = getattr(query, field)
            if value is not None:  # the index holds the id's key, not the id (django_rows.lookup_key)
                rows = rows.filter(**{key: lookup_key(value)})
        if query.since is not None:
            rows = rows.filter(ts__gte=query.since)
        if query.until is not None:
            rows = rows.filter(ts__lt=query.until)
        if query.shadow is not None:
            rows = _shadow(rows, query.shadow)
        after = query.after()
        if after is not None:
            ts, decision_id = after
            rows = rows.filter(Q(ts__lt=ts) | Q(ts=ts, decision_id__lt=decision_id))
        if query.reason_code is not None:
            rows = _with_reason(rows, query, after, limit)
        fetched = list(rows.order_by("-ts", "-decision_id")[: limit + 1])
        return page_of([_record(r) for r in fetched], limit)

    def count_decisions(self) -> int:
        return models.Decision.objects.count()

    def decision_stats(self, since: datetime, top: int = 10) -> DecisionStats:
        edge = first_whole_minute(since)
        # Before the first whole minute (at most a minute of decisions), from the decisions themselves.
        with connection.cursor() as cursor:
            totals = count_stored(cursor, "ts >= %s AND ts < %s", [_adapt()(since), _adapt()(edge)]).totals()
        minutes = models.DecisionMinute.objects.filter(minute__gte=edge)
        for kind, key, decision, n in minutes.values_list("kind", "key", "decision").annotate(Sum("n")).order_by():
            totals[kind, key, decision] += n
        return stats_of(since, totals, top)

    def rebuild_rollups(self, start: datetime | None, end: datetime) -> int:
        decisions = models.Decision.objects.aggregate(low=Min("ts"), high=Max("ts"))
        minutes = models.DecisionMinute.objects.aggregate(low=Min("minute"), high=Max("minute"))
        span = stored_span(start, end, [*decisions.values(), *minutes.values()])
        if span is None:
            return 0
        counted = 0
        for low, high in rollup_chunks(*span):
            with (
                _unavailable("the audit database did not take the rollups"),
                transaction.atomic(),
                connection.cursor() as cursor,
            ):
                counted += rebuild_minutes(cursor, connection.vendor, _adapt(), "%s", low, high)
        return counted

    def decision_payloads(self, since: datetime, until: datetime | None = None) -> Iterator[bytes]:
        rows = _shadow(models.Decision.objects.filter(ts__gte=since), False)
        if until is not None:
            rows = rows.filter(ts__lt=until)
        for payload in rows.order_by("ts", "decision_id").values_list("payload", flat=True).iterator(chunk_size=2000):
            yield payload.encode()

    def chains(self) -> list[str]:
        return list(
            models.Decision.objects.exclude(chain=None).values_list("chain", flat=True).distinct().order_by("chain")
        )

    def chain_records(self, chain: str, after_seq: int = 0) -> Iterator[DecisionRecord]:
        rows = models.Decision.objects.filter(chain=chain, seq__gt=after_seq).order_by("seq", "decision_id")
        for row in rows.iterator(chunk_size=2000):
            yield _record(row)

    def unchained_decisions(self, limit: int = 100) -> list[DecisionRecord]:
        return [_record(r) for r in models.Decision.objects.filter(chain=None).order_by("ts")[:limit]]

    # -- checkpoints and retention ---------------------------------------------------------------------------
    def insert_checkpoints(self, checkpoints: Sequence[StoredCheckpoint]) -> int:
        if not checkpoints:
            return 0
        wanted = {(c.chain, c.seq): c for c in checkpoints}  # a batch may repeat one
        now = connection.ops.adapt_datetimefield_value(datetime.now(UTC))
        with _unavailable("the audit database did not take the checkpoints"), transaction.atomic():
            known = set(
                models.Checkpoint.objects.filter(
                    chain__in={chain for chain, _ in wanted}, seq__in={seq for _, seq in wanted}
                ).values_list("chain", "seq")
            )
            fresh = [(c.chain, c.seq, c.payload.decode(), now) for key, c in wanted.items() if key not in known]
            if fresh:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO audit_checkpoints (chain, seq, payload, ingested_at) VALUES (%s, %s, %s, %s) "
                        "ON CONFLICT (chain, seq) DO NOTHING",
                        fresh,
                    )
        return len(fresh)

    def checkpoints(self, chain: str) -> list[StoredCheckpoint]:
        rows = models.Checkpoint.objects.filter(chain=chain).order_by("seq").values_list("chain", "seq", "payload")
        return [StoredCheckpoint(c, s, p.encode()) for c, s, p in rows]

    def checkpoint_chains(self) -> list[str]:
        return list(models.Checkpoint.objects.values_list("chain", flat=True).distinct().order_by("chain"))

    def prune_chain(self, chain: str, through_seq: int) -> int:
        # The database refuses DELETE: the guard is lifted for these three tables inside this transaction only
        # (which takes their owner's rights on PostgreSQL; audit/triggers.py).
        tables = ("audit_logs", "audit_log_reasons", "audit_checkpoints")
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            triggers.lifted(cursor.execute, connection.vendor, tables),
        ):
            # The rollups lose what goes, in the same transaction: they stay the counts of what is stored.
            removed_counts = count_stored(cursor, "chain = %s AND seq <= %s", [chain, through_seq])
            add_minutes(cursor, removed_counts.negated(), _adapt(), "%s")
            cursor.execute(
                "DELETE FROM audit_log_reasons WHERE decision_id IN "
                "(SELECT decision_id FROM audit_logs WHERE chain = %s AND seq <= %s)",
                [chain, through_seq],
            )
            cursor.execute("DELETE FROM audit_logs WHERE chain = %s AND seq <= %s", [chain, through_seq])
            removed = cursor.rowcount
            cursor.execute("DELETE FROM audit_checkpoints WHERE chain = %s AND seq < %s", [chain, through_seq])
        return removed

    def drop_covered(self, through: Mapping[str, int], before: date) -> dict[str, int]:
        """PostgreSQL's daily partitions of `audit_logs` (audit/store/partitions.py) that retention may remove
        whole: DROP TABLE instead of deleting their rows one by one (no dead rows, no index pages to clean up)."""
        removed: dict[str, int] = {}
        if connection.vendor != "postgresql" or not through:
            return removed
        with transaction.atomic(), connection.cursor() as cursor:
            if not partitions.is_partitioned(cursor):
                return removed
            with triggers.lifted(cursor.execute, connection.vendor, ("audit_log_reasons",)):
                for day, name in partitions.day_partitions(cursor):
                    counted = partitions.covered_counts(cursor, name, through) if day < before else None
                    if counted is None:
                        continue
                    # As in prune_chain: the rollups and the reasons lose what goes, in the same transaction.
                    # Read from the partition itself: a `tableoid` filter on the parent prunes no partition.
                    add_minutes(cursor, count_stored(cursor, "TRUE", [], table=name).negated(), _adapt(), "%s")
                    cursor.execute(
                        f"DELETE FROM audit_log_reasons WHERE decision_id IN (SELECT decision_id FROM {name})"  # noqa: S608
                    )
                    cursor.execute(f"DROP TABLE {name}")  # a DROP fires no row or TRUNCATE trigger
                    for chain, n in counted.items():
                        removed[chain] = removed.get(chain, 0) + n
        return removed

    # -- thoughts and incidents ----------------------------------------------------------------------------
    def put_thought(self, thought: Thought) -> bool:
        return _insert_once(models.Thought, asdict(thought), "the thought")

    def get_thought(self, thought_id: str) -> Thought | None:
        row = models.Thought.objects.filter(thought_id=thought_id).first()
        return thought_from(row) if row is not None else None

    def insert_incident(self, incident: Incident) -> bool:
        return _insert_once(
            models.Incident, {**asdict(incident), "embedding": list(incident.embedding)}, "the incident"
        )

    def get_incident(self, incident_id: str) -> Incident | None:
        row = models.Incident.objects.filter(incident_id=incident_id).first()
        return _incident(row) if row is not None else None

    def recent_incidents(self, limit: int = 50) -> list[Incident]:
        return [_incident(r) for r in models.Incident.objects.order_by("-ts", "-incident_id")[:limit]]

    def similar_incidents(
        self, vector: Sequence[float], limit: int = 5, kind: str | None = None
    ) -> list[tuple[Incident, float]]:
        """Exact nearest neighbours: incidents are few (one per burst or change, not per decision), so a scan of
        their vectors is cheap and gives the true order."""
        rows = models.Incident.objects.all() if kind is None else models.Incident.objects.filter(kind=kind)
        scored = []
        for row in rows.iterator(chunk_size=1000):
            scored.append((cosine(vector, row.embedding), row.incident_id, row))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [(_incident(row), score) for score, _, row in scored[:limit]]

    # -- alerts ------------------------------------------------------------------------------------------------
    def insert_alert(self, alert: AlertRecord) -> bool:
        return _insert_once(models.Alert, asdict(alert), "the alert")

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        row = models.Alert.objects.filter(alert_id=alert_id).values(*ALERT_FIELDS).first()
        return AlertRecord(**row) if row is not None else None

    def recent_alerts(
        self,
        limit: int = 100,
        severity: str | None = None,
        since: datetime | None = None,
        originals_only: bool = False,
    ) -> list[AlertRecord]:
        rows = models.Alert.objects.order_by("-received_at", "-alert_id")
        if originals_only:
            rows = rows.filter(duplicate_of__isnull=True)
        if severity is not None:
            rows = rows.filter(severity=severity)
        if since is not None:
            rows = rows.filter(received_at__gte=since)
        return [AlertRecord(**row) for row in rows.values(*ALERT_FIELDS)[:limit]]

    def repeat_counts(self, alert_ids: Sequence[str]) -> dict[str, int]:
        rows = (
            models.Alert.objects.filter(duplicate_of__in=list(alert_ids))
            .order_by()
            .values("duplicate_of")
            .annotate(n=Count("alert_id"))
        )
        return {row["duplicate_of"]: row["n"] for row in rows}

    def escalation_candidates(self, since: datetime, rounds: int) -> list[AlertRecord]:
        events = models.AlertEvent.objects.filter(alert_id=OuterRef("alert_id"))
        escalated = (
            events.filter(kind=ESCALATED).order_by().values("alert_id").annotate(n=Count("event_id")).values("n")
        )
        rows = (
            models.Alert.objects.filter(severity="critical", duplicate_of__isnull=True, received_at__gte=since)
            .exclude(Exists(events.filter(kind=ACKNOWLEDGED)))
            .annotate(done=Coalesce(Subquery(escalated), 0))
            .filter(done__lt=rounds)
            .order_by("received_at", "alert_id")
        )
        return [AlertRecord(**row) for row in rows.values(*ALERT_FIELDS)]

    def add_alert_event(self, event: AlertEvent) -> bool:
        return _insert_once(models.AlertEvent, asdict(event), "the alert event")

    def alert_events(self, alert_ids: Sequence[str]) -> list[AlertEvent]:
        rows = models.AlertEvent.objects.filter(alert_id__in=list(alert_ids)).order_by("ts", "event_id")
        return [AlertEvent(**row) for row in rows.values(*ALERT_EVENT_FIELDS)]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        rows = (
            models.AlertEvent.objects.filter(kind=DELIVERY)
            .values_list("channel", "outcome")
            .annotate(n=Count("id"))
            .order_by()
        )
        return {(channel or "", outcome or ""): n for channel, outcome, n in rows}

    def insert_tool_call(self, call: ToolCall) -> bool:
        return _insert_once(models.ToolCallRow, asdict(call), "the tool call")

    def recent_tool_calls(self, limit: int = 100, user: str | None = None) -> list[ToolCall]:
        rows = models.ToolCallRow.objects.order_by("-ts", "-call_id")
        if user is not None:
            rows = rows.filter(user=user)
        return [ToolCall(**row) for row in rows.values(*TOOL_CALL_FIELDS)[:limit]]

    def release_thread(self) -> None:
        connection.close()

    def close(self) -> None:
        """The Django connection is managed by Django."""


def _reconnect_next_time() -> None:
    """After a failed write the connection may be dead (a database restart): open a new one on the next call,
    unless a transaction around us still needs this one."""
    if not connection.in_atomic_block:
        connection.close()


def _unavailable(refused: str) -> AbstractContextManager[None]:
    return unavailable_on(DatabaseError, refused, _reconnect_next_time)


def _insert_once(model: Any, values: dict[str, Any], what: str) -> bool:
    def create() -> None:
        with transaction.atomic():
            model.objects.create(**values)

    return insert_once(
        create,
        duplicate=IntegrityError,
        failure=DatabaseError,
        refused=f"the database did not take {what}",
        after_failure=_reconnect_next_time,
    )


def _key(record: DecisionRecord) -> str:
    return record.decision_id


def _adapt() -> Callable[[datetime], object]:
    return connection.ops.adapt_datetimefield_value


def _insert_rows(records: Iterable[DecisionRecord]) -> int:
    """One `executemany` per table instead of `bulk_create`: the ORM's per-row model work was three quarters of
    the ingest's cost (bench/audit_store). Returns how many decisions were inserted (a row another writer
    committed meanwhile is skipped by ON CONFLICT, and not counted here)."""
    adapt = _adapt()
    now = adapt(datetime.now(UTC))
    rows, reasons = [], []
    for r in records:
        row = row_values(r, now, adapt)
        rows.append(row)
        reasons += reason_rows(r, row)
    vendor = connection.vendor
    with _batch_cursor() as cursor:
        decisions = _column_types(models.Decision, DECISION_COLUMNS)
        inserted = write_rows(cursor, lambda t: insert_decision_sql("%s", vendor, t), rows, decisions)
        reason_types = _column_types(models.DecisionReason, REASON_COLUMNS)
        write_rows(cursor, lambda t: insert_reason_sql("%s", t), reasons, reason_types)
    return inserted


@contextmanager
def _batch_cursor() -> Iterator[Any]:
    """The cursor a batch's rows are written with. On PostgreSQL one that binds on the server: Django's psycopg
    cursor binds on the client, quoting every value of the batch's arrays into the statement's text in Python;
    this one sends them as parameters (bench/audit_store). It works in Django's connection and transaction, with
    its errors mapped to Django's as every other query's are."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _column_types(model: Any, columns: Sequence[str]) -> list[str] | None:
    """PostgreSQL: the columns' SQL types, for a batch written as one array a column (django_rows.write_rows).
    SQLite: None, a row at a time through one prepared statement."""
    if connection.vendor != "postgresql":
        return None
    fields = {f.column: f for f in model._meta.concrete_fields}
    return [fields[c].db_type(connection) for c in columns]


def _with_reason(rows: QuerySet, query: DecisionQuery, after: tuple[datetime, str] | None, limit: int) -> QuerySet:
    """Decisions refused for one reason, without collecting every decision with that reason first (1M records:
    p99 from 1.3 s to under 10 ms, bench/audit_store)."""
    if query.shadow is None and all(getattr(query, name) is None for name in _EXACT_FILTERS):
        # Only the reason (and time or cursor): the page is a range of the reasons index, newest first.
        reasons = models.DecisionReason.objects.filter(code=query.reason_code)
        if query.since is not None:
            reasons = reasons.filter(ts__gte=query.since)
        if query.until is not None:
            reasons = reasons.filter(ts__lt=query.until)
        if after is not None:
            reasons = reasons.filter(Q(ts__lt=after[0]) | Q(ts=after[0], decision_id__lt=after[1]))
        ids = list(reasons.order_by("-ts", "-decision_id").values_list("decision_id", flat=True)[: limit + 1])
        return rows.filter(decision_id__in=ids)
    # With other filters: walk their index newest first and check the reason per row (its unique index).
    return rows.filter(
        Exists(models.DecisionReason.objects.filter(decision_id=OuterRef("decision_id"), code=query.reason_code))
    )


def _shadow(rows: QuerySet, shadow: bool) -> QuerySet:
    """Shadow gates' decisions only (or, `shadow=False`, serving gates' only): by the audit subject's head compared
    for equality, exact on every database (SQLite's LIKE, hence `startswith`, ignores case)."""
    head = Left("audit_subject", len(SHADOW_AUDIT_PREFIX))
    marked = Q(subject_head=SHADOW_AUDIT_PREFIX)
    rows = rows.alias(subject_head=head)
    return rows.filter(marked) if shadow else rows.exclude(marked)


def _record(row: models.Decision) -> DecisionRecord:
    return DecisionRecord(
        decision_id=row.decision_id,
        ts=row.ts,
        gate_id=row.gate_id,
        subject=row.subject,
        strategy_id=row.strategy_id,
        strategy_key=row.strategy_key,
        symbol=row.symbol,
        action=row.action,
        intent_id=row.intent_id,
        signal_id=row.signal_id,
        decision=row.decision,
        reason_codes=tuple(row.reason_codes.split()) if row.reason_codes else (),
        policy_version=row.policy_version,
        policy_checksum=row.policy_checksum,
        trace_id=row.trace_id,
        span_id=row.span_id,
        latency_us=row.latency_us,
        trading_state=row.trading_state,
        snapshot_ts=row.snapshot_ts,
        audit_subject=row.audit_subject,
        payload=row.payload.encode(),
        chain=row.chain,
        seq=row.seq,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _incident(row: models.Incident) -> Incident:
    return Incident(
        row.incident_id,
        row.ts,
        row.kind,
        row.title,
        row.detail,
        row.strategy_id,
        row.symbol,
        row.trace_id,
        tuple(row.embedding),
    )
