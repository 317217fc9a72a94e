"""The audit store on MongoDB (production), through pymongo: collections `audit_logs`, `thoughts`, `incidents`
(and `audit_quarantine`), indexes created at start-up.

A decision's `_id` is its `decision_id`, so a redelivered or replayed event is a duplicate-key error that the
insert skips, never a second document. Writes use `w="majority"`/journaled acknowledgement where the server
supports it: `insert_decisions` returns only once the batch is durable.
"""

import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import pymongo
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.operations import SearchIndexModel, UpdateOne
from pymongo.write_concern import WriteConcern

from audit.embedding import DIMENSIONS, cosine
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
from audit.store.rollups import MinuteCounts, first_whole_minute, rollup_chunks, stored_span
from cio_kernel.contracts.identity import IdentityError, strategy_key
from cio_kernel.shadow import SHADOW_AUDIT_PREFIX

DUPLICATE_KEY = 11000
VECTOR_INDEX = "incident_embedding"
# The Atlas vector search index on `incidents` (docs/audit.md): created through the driver by prepare_release.
VECTOR_INDEX_DEFINITION: dict[str, Any] = {
    "fields": [
        {"type": "vector", "path": "embedding", "numDimensions": DIMENSIONS, "similarity": "cosine"},
        {"type": "filter", "path": "kind"},
    ]
}
# A shadow gate's decision, by the subject it was audited on (`DecisionRecord.shadow`); case-sensitive, as subjects.
_SHADOW_SUBJECT = {"$regex": "^" + re.escape(SHADOW_AUDIT_PREFIX)}


class MongoAuditStore:
    name = "mongodb"

    def __init__(self, client: pymongo.MongoClient, database: str, write_concern: WriteConcern) -> None:
        self._client = client
        db = client.get_database(database, write_concern=write_concern)
        self._decisions = db["audit_logs"]
        self._thoughts = db["thoughts"]
        self._alerts = db["alerts"]
        self._alert_events = db["alert_events"]
        self._tool_calls = db["mcp_calls"]
        self._incidents = db["incidents"]
        self._quarantine = db["audit_quarantine"]
        self._checkpoints = db["audit_checkpoints"]
        self._decision_minutes = db["audit_decision_minutes"]
        # Counts of inserted decisions not yet added to the rollups (the addition failed): added before the next
        # batch's, so a failure between the two writes loses nothing unless this process dies meanwhile.
        self._uncounted = MinuteCounts()
        self._counting = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str, timeout_s: float = 5.0) -> "MongoAuditStore":
        client: pymongo.MongoClient = pymongo.MongoClient(
            uri, tz_aware=True, tzinfo=UTC, serverSelectionTimeoutMS=int(timeout_s * 1000), connectTimeoutMS=2000
        )
        database = client.get_default_database(default="petrosa_cio").name
        # Journaled, majority-acknowledged writes: an acknowledged batch survives a crash of the server.
        return cls(client, database, WriteConcern(w="majority", j=True))

    def ensure_schema(self) -> None:
        try:
            self._decisions.create_index("decision_id", unique=True, name="decision_id_unique")
            self._decisions.create_index("trace_id", name="trace_id")
            self._decisions.create_index([("ts", -1), ("decision_id", -1)], name="ts")
            self._decisions.create_index([("strategy_key", 1), ("ts", -1), ("decision_id", -1)], name="strategy_key_ts")
            self._decisions.create_index([("symbol", 1), ("ts", -1), ("decision_id", -1)], name="symbol_ts")
            self._decisions.create_index([("reason_codes", 1), ("ts", -1)], name="reason_ts")
            self._decisions.create_index("signal_id", name="signal_id")
            self._decisions.create_index([("chain", 1), ("seq", 1)], name="chain_seq")
            self._checkpoints.create_index([("chain", 1), ("seq", 1)], name="chain_seq")
            self._decision_minutes.create_index(
                [("minute", 1), ("kind", 1), ("key", 1), ("decision", 1)], unique=True, name="minute_once"
            )
            self._thoughts.create_index("thought_id", unique=True, name="thought_id_unique")
            self._alerts.create_index([("received_at", -1), ("_id", -1)], name="received")
            self._alerts.create_index([("severity", 1), ("received_at", -1)], name="severity_received")
            self._alert_events.create_index([("alert_id", 1), ("ts", 1)], name="alert_ts")
            self._tool_calls.create_index([("ts", -1), ("_id", -1)], name="ts")
            self._tool_calls.create_index([("user", 1), ("ts", -1)], name="user_ts")
            self._incidents.create_index([("ts", -1)], name="ts")
            self._incidents.create_index([("kind", 1), ("ts", -1)], name="kind_ts")
            self._backfill_strategy_keys()
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB could not create the audit indexes: {exc!r}") from exc

    def ensure_search_index(self) -> str:
        """The vector index of similar-incident search, through the driver (Atlas: `createSearchIndexes`, built
        asynchronously by Atlas). A server without search-index commands may still define the index itself (a
        self-managed search node, or the test server's `--vector-index`): then a `$vectorSearch` that answers
        proves it is there. Neither: fail, since the Strategist's similar-incident search would fail later."""
        try:
            existing = list(self._incidents.list_search_indexes(VECTOR_INDEX))
        except OperationFailure as exc:
            return self._probe_vector_index(exc)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB could not list the search indexes: {exc!r}") from exc
        try:
            if not existing:
                self._incidents.create_search_index(
                    SearchIndexModel(name=VECTOR_INDEX, type="vectorSearch", definition=VECTOR_INDEX_DEFINITION)
                )
                return f"{VECTOR_INDEX}: created"
            if existing[0].get("latestDefinition") != VECTOR_INDEX_DEFINITION:
                self._incidents.update_search_index(VECTOR_INDEX, VECTOR_INDEX_DEFINITION)
                return f"{VECTOR_INDEX}: updated"
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB could not create the {VECTOR_INDEX} index: {exc!r}") from exc
        return f"{VECTOR_INDEX}: unchanged"

    def _probe_vector_index(self, why: OperationFailure) -> str:
        probe = {"index": VECTOR_INDEX, "path": "embedding", "queryVector": [0.0] * DIMENSIONS}
        try:
            list(self._incidents.aggregate([{"$vectorSearch": {**probe, "numCandidates": 1, "limit": 1}}]))
        except PyMongoError as exc:
            raise StoreUnavailableError(
                f"this MongoDB has no search-index commands ({why}) and no {VECTOR_INDEX} index answers ({exc}): "
                "define it on the server (docs/audit.md)"
            ) from exc
        return f"{VECTOR_INDEX}: defined by the server (no search-index commands here)"

    def _backfill_strategy_keys(self) -> None:
        """Decisions stored before gates stamped `strategy_key` get the key of their `strategy_id`, as the
        Django backend's migration 0008 does, so filters find them and `audit_verify` sees them as they were."""
        missing = {"strategy_key": {"$exists": False}, "strategy_id": {"$ne": None}}
        for strategy_id in self._decisions.distinct("strategy_id", missing):
            try:
                key = strategy_key(strategy_id)
            except IdentityError:
                key = None
            self._decisions.update_many({**missing, "strategy_id": strategy_id}, {"$set": {"strategy_key": key}})

    # -- decisions -----------------------------------------------------------------------------------------
    def insert_decisions(self, records: Sequence[DecisionRecord]) -> int:
        if not records:
            return 0
        unique = list({r.decision_id: r for r in records}.values())
        inserted = _insert_new(self._decisions, [_document(r) for r in unique], "the batch")
        with self._counting:
            # Only what this insert stored: a redelivered decision was a duplicate above and is not counted again.
            self._uncounted.add_records(unique[i] for i in inserted)
            self._add_uncounted()
        return len(inserted)

    def _add_uncounted(self) -> None:
        """Add the held counts to the rollups (`$inc` upserts). What MongoDB refused stays held, and the batch is
        reported unavailable, so the ingest retries it: the retry inserts nothing new and adds what is held.
        A process that dies while holding counts loses them (`audit_rollups_rebuild` recounts; docs/audit.md)."""
        counts, self._uncounted = self._uncounted, MinuteCounts()
        if not counts:
            return
        try:
            _add_minutes(self._decision_minutes, counts)
        except _Uncounted as exc:
            self._uncounted = exc.left
            raise

    def quarantine(self, events: Sequence[QuarantinedEvent]) -> None:
        documents = [
            {
                "_id": e.stream_seq,
                "audit_subject": e.audit_subject,
                "payload": e.payload,
                "headers": e.headers,
                "problem": e.problem,
                "received_at": e.received_at,
            }
            for e in events
        ]
        if not documents:
            return
        try:
            self._quarantine.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise StoreUnavailableError("MongoDB refused the quarantine") from exc
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB did not take the quarantine: {exc!r}") from exc

    def quarantined(self, limit: int = 100) -> list[QuarantinedEvent]:
        docs = self._quarantine.find().sort("_id", -1).limit(limit)
        return [
            QuarantinedEvent(
                d["_id"], d["audit_subject"], bytes(d["payload"]), d["headers"], d["problem"], d["received_at"]
            )
            for d in docs
        ]

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        document = self._decisions.find_one({"_id": decision_id})
        return _record(document) if document else None

    def get_decisions(self, decision_ids: Sequence[str]) -> list[DecisionRecord]:
        documents = {d["_id"]: d for d in self._decisions.find({"_id": {"$in": list(decision_ids)}})}
        return [_record(documents[i]) for i in dict.fromkeys(decision_ids) if i in documents]

    def find_decisions(self, query: DecisionQuery) -> DecisionPage:
        limit = max(1, min(query.limit, MAX_PAGE))
        conditions: list[dict[str, Any]] = []
        for field in ("strategy_key", "symbol", "decision", "policy_version", "gate_id", "trace_id", "signal_id"):
            value = getattr(query, field)
            if value is not None:
                conditions.append({field: value})
        if query.decision_id is not None:
            conditions.append({"_id": query.decision_id})
        if query.reason_code is not None:
            conditions.append({"reason_codes": query.reason_code})
        if query.since is not None:
            conditions.append({"ts": {"$gte": query.since}})
        if query.until is not None:
            conditions.append({"ts": {"$lt": query.until}})
        if query.shadow is not None:
            conditions.append(_shadow(query.shadow))
        after = query.after()
        if after is not None:
            ts, decision_id = after
            conditions.append({"$or": [{"ts": {"$lt": ts}}, {"ts": ts, "decision_id": {"$lt": decision_id}}]})
        where = {"$and": conditions} if conditions else {}
        cursor = self._decisions.find(where).sort([("ts", -1), ("decision_id", -1)]).limit(limit + 1)
        return page_of([_record(d) for d in cursor], limit)

    def count_decisions(self) -> int:
        return self._decisions.count_documents({})

    def decision_stats(self, since: datetime, top: int = 10) -> DecisionStats:
        edge = first_whole_minute(since)
        # Before the first whole minute (at most a minute of decisions), from the decisions themselves.
        totals = _stored_counts(self._decisions.find({"ts": {"$gte": since, "$lt": edge}}, _COUNTED)).totals()
        keys = {"kind": "$kind", "key": "$key", "decision": "$decision"}
        for g in self._decision_minutes.aggregate(
            [{"$match": {"minute": {"$gte": edge}}}, {"$group": {"_id": keys, "n": {"$sum": "$n"}}}]
        ):
            totals[g["_id"]["kind"], g["_id"]["key"], g["_id"]["decision"]] += g["n"]
        return stats_of(since, totals, top)

    def rebuild_rollups(self, start: datetime | None, end: datetime) -> int:
        """Without transactions here, an ingest adding to these minutes while they are recounted can be counted
        twice or lost: run it with the ingest stopped, or for minutes the ingest no longer adds to."""
        counted = 0
        with unavailable_on(PyMongoError, "MongoDB did not take the rollups"):
            bounds = [
                (found or {}).get(field)
                for collection, field in ((self._decisions, "ts"), (self._decision_minutes, "minute"))
                for order in (1, -1)
                for found in [collection.find_one({}, {field: 1}, sort=[(field, order)])]
            ]
            span = stored_span(start, end, bounds)
            if span is None:
                return 0
            for low, high in rollup_chunks(*span):
                self._decision_minutes.delete_many({"minute": {"$gte": low, "$lt": high}})
                counts = _stored_counts(self._decisions.find({"ts": {"$gte": low, "$lt": high}}, _COUNTED))
                _add_minutes(self._decision_minutes, counts)
                counted += counts.decided()
        return counted

    def decision_payloads(self, since: datetime, until: datetime | None = None) -> Iterator[bytes]:
        window: dict[str, Any] = {"$gte": since} if until is None else {"$gte": since, "$lt": until}
        found = self._decisions.find({"$and": [{"ts": window}, _shadow(False)]}, {"payload": 1, "_id": 0})
        for document in found.sort([("ts", 1), ("decision_id", 1)]).batch_size(2000):
            yield document["payload"].encode()

    def chains(self) -> list[str]:
        return sorted(c for c in self._decisions.distinct("chain") if c is not None)

    def chain_records(self, chain: str, after_seq: int = 0) -> Iterator[DecisionRecord]:
        found = self._decisions.find({"chain": chain, "seq": {"$gt": after_seq}})
        for document in found.sort([("seq", 1), ("decision_id", 1)]):
            yield _record(document)

    def unchained_decisions(self, limit: int = 100) -> list[DecisionRecord]:
        return [_record(d) for d in self._decisions.find({"chain": None}).sort("ts", 1).limit(limit)]

    # -- checkpoints and retention ---------------------------------------------------------------------------
    def insert_checkpoints(self, checkpoints: Sequence[StoredCheckpoint]) -> int:
        if not checkpoints:
            return 0
        documents = [
            {"_id": f"{c.chain}:{c.seq}", "chain": c.chain, "seq": c.seq, "payload": c.payload.decode()}
            for c in {(c.chain, c.seq): c for c in checkpoints}.values()
        ]
        return len(_insert_new(self._checkpoints, documents, "the checkpoints"))

    def checkpoints(self, chain: str) -> list[StoredCheckpoint]:
        found = self._checkpoints.find({"chain": chain}).sort("seq", 1)
        return [StoredCheckpoint(d["chain"], d["seq"], d["payload"].encode()) for d in found]

    def checkpoint_chains(self) -> list[str]:
        return sorted(c for c in self._checkpoints.distinct("chain") if c is not None)

    def drop_covered(self, through: Mapping[str, int], before: date) -> dict[str, int]:
        return {}  # not stored by day: `prune_chain` removes record by record

    def prune_chain(self, chain: str, through_seq: int) -> int:
        # MongoDB has no triggers: a deployment refuses deletes to the ingest's own user by its role (find and
        # insert only, docs/audit.md); retention runs as a user that may delete.
        # The rollups lose what goes, after it went: a failure between the two leaves those old minutes counting
        # too much, until `audit_rollups_rebuild` recounts them (docs/audit.md).
        going = {"chain": chain, "seq": {"$lte": through_seq}}
        with unavailable_on(PyMongoError, "MongoDB did not take the removal"):
            counts = _stored_counts(self._decisions.find(going, _COUNTED))
            removed = self._decisions.delete_many(going).deleted_count
            self._checkpoints.delete_many({"chain": chain, "seq": {"$lt": through_seq}})
            _add_minutes(self._decision_minutes, counts.negated())
        return removed

    # -- thoughts and incidents ----------------------------------------------------------------------------
    def put_thought(self, thought: Thought) -> bool:
        return _insert_once(self._thoughts, thought.thought_id, asdict(thought), "the thought")

    def get_thought(self, thought_id: str) -> Thought | None:
        document = self._thoughts.find_one({"_id": thought_id})
        return thought_from(document) if document is not None else None

    def insert_incident(self, incident: Incident) -> bool:
        document = {k: v for k, v in asdict(incident).items() if k != "incident_id"}  # the key is `_id` alone
        return _insert_once(
            self._incidents, incident.incident_id, {**document, "embedding": list(incident.embedding)}, "the incident"
        )

    def get_incident(self, incident_id: str) -> Incident | None:
        document = self._incidents.find_one({"_id": incident_id})
        return _incident(document) if document is not None else None

    def recent_incidents(self, limit: int = 50) -> list[Incident]:
        return [_incident(d) for d in self._incidents.find().sort([("ts", -1), ("_id", -1)]).limit(limit)]

    def similar_incidents(
        self, vector: Sequence[float], limit: int = 5, kind: str | None = None
    ) -> list[tuple[Incident, float]]:
        """Atlas `$vectorSearch` over the `incident_embedding` index (cosine) finds the candidates; the score is
        recomputed here from the vectors, because Atlas reports (1 + cos) / 2 and other servers the cosine, and
        both backends must report the same number and order."""
        stage: dict[str, Any] = {
            "index": VECTOR_INDEX,
            "path": "embedding",
            "queryVector": list(vector),
            "numCandidates": max(100, limit * 20),
            "limit": limit,
        }
        if kind is not None:
            stage["filter"] = {"kind": kind}
        try:
            documents = list(self._incidents.aggregate([{"$vectorSearch": stage}]))
        except OperationFailure as exc:
            raise StoreUnavailableError(f"vector search failed (is the {VECTOR_INDEX} index defined?): {exc}") from exc
        scored = [(_incident(d), cosine(vector, d["embedding"])) for d in documents]
        scored.sort(key=lambda pair: (-pair[1], pair[0].incident_id))
        return scored

    # -- alerts ------------------------------------------------------------------------------------------------
    def insert_alert(self, alert: AlertRecord) -> bool:
        return _insert_once(self._alerts, alert.alert_id, asdict(alert), "the alert")

    def get_alert(self, alert_id: str) -> AlertRecord | None:
        document = self._alerts.find_one({"_id": alert_id})
        return _alert(document) if document is not None else None

    def recent_alerts(
        self,
        limit: int = 100,
        severity: str | None = None,
        since: datetime | None = None,
        originals_only: bool = False,
    ) -> list[AlertRecord]:
        query: dict[str, Any] = {}
        if originals_only:
            query["duplicate_of"] = None
        if severity is not None:
            query["severity"] = severity
        if since is not None:
            query["received_at"] = {"$gte": since}
        found = self._alerts.find(query).sort([("received_at", -1), ("_id", -1)]).limit(limit)
        return [_alert(d) for d in found]

    def repeat_counts(self, alert_ids: Sequence[str]) -> dict[str, int]:
        match = {"$match": {"duplicate_of": {"$in": list(alert_ids)}}}
        group = {"$group": {"_id": "$duplicate_of", "n": {"$sum": 1}}}
        return {d["_id"]: d["n"] for d in self._alerts.aggregate([match, group])}

    def escalation_candidates(self, since: datetime, rounds: int) -> list[AlertRecord]:
        # Originals only, oldest first, in batches: repeats are never read, so they cannot crowd one out.
        query = {"severity": "critical", "duplicate_of": None, "received_at": {"$gte": since}}
        found = self._alerts.find(query).sort([("received_at", 1), ("_id", 1)]).batch_size(500)
        due: list[AlertRecord] = []
        batch: list[AlertRecord] = []

        def settle() -> None:
            done: dict[str, int] = {}
            acknowledged: set[str] = set()
            ids = [a.alert_id for a in batch]
            for e in self._alert_events.find({"alert_id": {"$in": ids}, "kind": {"$in": [ACKNOWLEDGED, ESCALATED]}}):
                if e["kind"] == ACKNOWLEDGED:
                    acknowledged.add(e["alert_id"])
                else:
                    done[e["alert_id"]] = done.get(e["alert_id"], 0) + 1
            due.extend(a for a in batch if a.alert_id not in acknowledged and done.get(a.alert_id, 0) < rounds)
            batch.clear()

        for document in found:
            batch.append(_alert(document))
            if len(batch) == 500:
                settle()
        settle()
        return due

    def add_alert_event(self, event: AlertEvent) -> bool:
        return _insert_once(self._alert_events, event.event_id, asdict(event), "the alert event")

    def alert_events(self, alert_ids: Sequence[str]) -> list[AlertEvent]:
        found = self._alert_events.find({"alert_id": {"$in": list(alert_ids)}}).sort([("ts", 1), ("_id", 1)])
        return [AlertEvent(**{k: d.get(k) for k in ALERT_EVENT_FIELDS}) for d in found]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        groups = self._alert_events.aggregate(
            [
                {"$match": {"kind": DELIVERY}},
                {"$group": {"_id": {"channel": "$channel", "outcome": "$outcome"}, "n": {"$sum": 1}}},
            ]
        )
        return {(g["_id"].get("channel") or "", g["_id"].get("outcome") or ""): int(g["n"]) for g in groups}

    def insert_tool_call(self, call: ToolCall) -> bool:
        return _insert_once(self._tool_calls, call.call_id, asdict(call), "the tool call")

    def recent_tool_calls(self, limit: int = 100, user: str | None = None) -> list[ToolCall]:
        query = {"user": user} if user is not None else {}
        found = self._tool_calls.find(query).sort([("ts", -1), ("_id", -1)]).limit(limit)
        return [ToolCall(**{k: d.get(k) for k in TOOL_CALL_FIELDS}) for d in found]

    def release_thread(self) -> None:
        """The client is shared by every thread."""

    def close(self) -> None:
        self._client.close()


def _document(r: DecisionRecord) -> dict[str, Any]:
    return {
        "_id": r.decision_id,
        "decision_id": r.decision_id,
        "ts": r.ts,
        "gate_id": r.gate_id,
        "subject": r.subject,
        "strategy_id": r.strategy_id,
        "strategy_key": r.strategy_key,
        "symbol": r.symbol,
        "action": r.action,
        "intent_id": r.intent_id,
        "signal_id": r.signal_id,
        "decision": r.decision,
        "reason_codes": list(r.reason_codes),
        "policy_version": r.policy_version,
        "policy_checksum": r.policy_checksum,
        "trace_id": r.trace_id,
        "span_id": r.span_id,
        "latency_us": r.latency_us,
        "trading_state": r.trading_state,
        "snapshot_ts": r.snapshot_ts,
        "audit_subject": r.audit_subject,
        "payload": r.payload.decode(),
        "chain": r.chain,
        "seq": r.seq,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    }


def _insert_once(collection: Any, key: str, document: dict[str, Any], what: str) -> bool:
    return insert_once(
        lambda: collection.insert_one({"_id": key, **document}),
        duplicate=DuplicateKeyError,
        failure=PyMongoError,
        refused=f"MongoDB did not take {what}",
    )


def _insert_new(collection: Any, documents: list[dict[str, Any]], what: str) -> list[int]:
    """Insert what is not there yet (by `_id`): a redelivered document is a duplicate, not an error. Returns the
    positions of the documents that were new; anything else MongoDB refuses is `StoreUnavailableError` (the ingest
    retries the batch)."""
    with unavailable_on(PyMongoError, f"MongoDB did not take {what}"):
        try:
            collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get("writeConcernErrors"):
                raise StoreUnavailableError(f"MongoDB refused part of {what}: {errors[:3]}") from exc
            duplicates = {e["index"] for e in errors}
            return [i for i in range(len(documents)) if i not in duplicates]
    return list(range(len(documents)))


_COUNTED = {"ts": 1, "strategy_key": 1, "symbol": 1, "decision": 1, "reason_codes": 1, "audit_subject": 1, "_id": 0}


def _stored_counts(documents: Iterable[dict[str, Any]]) -> MinuteCounts:
    counts = MinuteCounts()
    for d in documents:
        counts.add(
            d["ts"],
            d.get("strategy_key"),
            d.get("symbol"),
            d["decision"],
            d.get("reason_codes") or (),
            d["audit_subject"],
        )
    return counts


class _Uncounted(StoreUnavailableError):
    """MongoDB did not take all of an addition to the rollups; `left` holds what it may not have taken."""

    def __init__(self, left: MinuteCounts, why: Exception) -> None:
        super().__init__(f"MongoDB did not take the rollups: {why!r}")
        self.left = left


def _add_minutes(decision_minutes: Any, counts: MinuteCounts) -> None:
    """`$inc` upserts in one unordered bulk write; counts taken down to zero leave no document. Raises
    `_Uncounted` with the counts MongoDB refused, or all of them when it may not have applied any (a lost
    connection)."""
    rows = counts.rows()
    if not rows:
        return
    updates = [
        UpdateOne({"minute": m, "kind": kind, "key": key, "decision": d}, {"$inc": {"n": n}}, upsert=True)
        for m, kind, key, d, n in rows
    ]
    try:
        decision_minutes.bulk_write(updates, ordered=False)
    except BulkWriteError as exc:
        refused = {e["index"] for e in exc.details.get("writeErrors", [])}
        left = MinuteCounts(Counter({tuple(row[:4]): row[4] for i, row in enumerate(rows) if i in refused}))
        raise _Uncounted(left, exc) from exc
    except PyMongoError as exc:
        raise _Uncounted(counts, exc) from exc
    emptied = [row[0] for row in rows if row[-1] < 0]
    if emptied:
        decision_minutes.delete_many({"minute": {"$gte": min(emptied), "$lte": max(emptied)}, "n": {"$lte": 0}})


def _shadow(shadow: bool) -> dict[str, Any]:
    """Shadow gates' decisions only, or (`shadow=False`) serving gates' only."""
    return {"audit_subject": _SHADOW_SUBJECT if shadow else {"$not": _SHADOW_SUBJECT}}


def _record(d: dict[str, Any]) -> DecisionRecord:
    return DecisionRecord(
        decision_id=d["decision_id"],
        ts=d["ts"],
        gate_id=d["gate_id"],
        subject=d["subject"],
        strategy_id=d.get("strategy_id"),
        strategy_key=d.get("strategy_key"),
        symbol=d.get("symbol"),
        action=d.get("action"),
        intent_id=d.get("intent_id"),
        signal_id=d.get("signal_id"),
        decision=d["decision"],
        reason_codes=tuple(d.get("reason_codes") or ()),
        policy_version=d.get("policy_version"),
        policy_checksum=d.get("policy_checksum"),
        trace_id=d["trace_id"],
        span_id=d["span_id"],
        latency_us=d["latency_us"],
        trading_state=d.get("trading_state"),
        snapshot_ts=d.get("snapshot_ts"),
        audit_subject=d["audit_subject"],
        payload=d["payload"].encode(),
        chain=d.get("chain"),
        seq=d.get("seq"),
        prev_hash=d.get("prev_hash"),
        hash=d.get("hash"),
    )


def _alert(d: dict[str, Any]) -> AlertRecord:
    return AlertRecord(**{k: d.get(k) for k in ALERT_FIELDS})


def _incident(d: dict[str, Any]) -> Incident:
    return Incident(
        d["_id"],
        d["ts"],
        d["kind"],
        d["title"],
        d.get("detail") or {},
        d.get("strategy_id"),
        d.get("symbol"),
        d.get("trace_id"),
        tuple(d["embedding"]),
    )
