"""Someone with the audit database's admin rights, editing below the store interface: they can drop the guard
triggers, rewrite a record, recompute every link after it and put the triggers back. They hold no gate's signing
key and cannot publish as a gate."""

import pymongo
from django.db import connection

from audit import triggers
from audit.records import DecisionRecord
from audit.store.django_rows import DECISION_COLUMNS, row_values
from audit.store.mongo import _document


class Tamper:
    """Edits one backend's storage below the store interface, as someone with the database's admin rights."""

    def __init__(self, store, mongo_url: str | None) -> None:
        self.store = store
        self.db = pymongo.MongoClient(mongo_url)["cio_test"] if mongo_url else None

    def set(self, decision_id: str, **fields) -> None:
        if self.db is not None:
            self.db["audit_logs"].update_one({"_id": decision_id}, {"$set": fields})
            return
        assignments = ", ".join(f"{name} = %s" for name in fields)
        self._bypassing_triggers(
            f"UPDATE audit_logs SET {assignments} WHERE decision_id = %s", [*fields.values(), decision_id]
        )

    def put(self, record: DecisionRecord) -> None:
        """Overwrite the stored record of `record.decision_id` with every field of `record`."""
        if self.db is not None:
            self.db["audit_logs"].replace_one({"_id": record.decision_id}, _document(record))
            return
        columns = DECISION_COLUMNS[:-1]  # all but ingested_at
        values = list(row_values(record, None, connection.ops.adapt_datetimefield_value)[:-1])
        assignments = ", ".join(f"{name} = %s" for name in columns)
        self._bypassing_triggers(
            f"UPDATE audit_logs SET {assignments} WHERE decision_id = %s", [*values, record.decision_id]
        )

    def remove(self, decision_id: str) -> None:
        if self.db is not None:
            self.db["audit_logs"].delete_one({"_id": decision_id})
            return
        self._bypassing_triggers("DELETE FROM audit_logs WHERE decision_id = %s", [decision_id])

    def truncate(self) -> None:
        """Every decision gone (and the stored checkpoints with them)."""
        if self.db is not None:
            self.db["audit_logs"].delete_many({})
            self.db["audit_checkpoints"].delete_many({})
            return
        verb = "TRUNCATE" if connection.vendor == "postgresql" else "DELETE FROM"
        for table in ("audit_log_reasons", "audit_logs", "audit_checkpoints"):
            self._bypassing_triggers(f"{verb} {table}", [], table)

    def remove_checkpoints(self) -> None:
        if self.db is not None:
            self.db["audit_checkpoints"].delete_many({})
            return
        self._bypassing_triggers("DELETE FROM audit_checkpoints", [], "audit_checkpoints")

    def set_checkpoint_payload(self, seq: int, payload: bytes) -> None:
        if self.db is not None:
            self.db["audit_checkpoints"].update_one({"seq": seq}, {"$set": {"payload": payload.decode()}})
            return
        self._bypassing_triggers(
            "UPDATE audit_checkpoints SET payload = %s WHERE seq = %s", [payload.decode(), seq], "audit_checkpoints"
        )

    @staticmethod
    def _bypassing_triggers(sql: str, params: list, table: str = "audit_logs") -> None:
        # What an attacker with the database's admin rights does; the guard is put back afterwards, as they would to
        # cover their tracks (and so the next test starts from the migrated schema).
        with connection.cursor() as cursor:
            triggers.drop(cursor.execute, connection.vendor, (table,))
            try:
                cursor.execute(sql, params)
            finally:
                triggers.create(cursor.execute, connection.vendor, (table,))
