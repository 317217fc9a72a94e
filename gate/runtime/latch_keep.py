"""The active latches a gate holds, kept on its spool volume, so a restarted gate still holds them whatever Redis
says (docs/policy.md, "Latched limits").

Whoever can write Redis can put a genuine, signed release of an *earlier* trip back over the current one. A running
gate overrules that (it holds the newer trip); a gate that restarts would otherwise know only what Redis says.
With this file it starts holding what it (or a predecessor on the same volume) held, and the usual rule decides:
a release in Redis lifts a kept latch only when it covers it (`gate.decision.latches.LatchBook.replace`), and a
kept latch Redis lost or holds an earlier release over is stored again.

Each gate writes its own file, `<spool>/latches.<gate id>.json` (a JSON list of records), atomically, when the
set of latches it holds changes (rarely: on a trip or a release); at start every such file in the folder is read.
A file that does not parse is ignored and logged. A record in it can only hold a latch, never release one.
"""

import logging
import threading
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from cio_kernel.contracts.latch import LatchRecord
from gate.runtime.durable_file import replace_durably

log = logging.getLogger(__name__)

FILE_PREFIX = "latches."
# An active record is under ~1.5 kB (its fields are bounded: cio_kernel/contracts/latch.py) and a gate reads at
# most MAX_LATCH_FIELDS of them, so a file of every latch a flooded hash could make a gate hold still loads: a file
# it refused would let a restarted gate forget the latches it held.
MAX_FILE_BYTES = 32 * 1024 * 1024
_RECORDS = TypeAdapter(list[LatchRecord])


def keep_file(folder: Path, gate_id: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in gate_id) or "gate"
    return folder / f"{FILE_PREFIX}{safe}.json"


class LatchKeep:
    def __init__(self, folder: Path | None, gate_id: str) -> None:
        """`folder` None keeps nothing (the gate holds its latches in memory only)."""
        self._folder = folder
        self._path = keep_file(folder, gate_id) if folder is not None else None
        self._written: set[bytes] | None = None
        self._lock = threading.Lock()

    def load(self) -> list[LatchRecord]:
        """The active latches every gate's file in the folder holds (blocking: run it off the event loop)."""
        if self._folder is None or not self._folder.is_dir():
            return []
        found: list[LatchRecord] = []
        for path in sorted(self._folder.glob(f"{FILE_PREFIX}*.json")):
            try:
                with path.open("rb") as handle:
                    raw = handle.read(MAX_FILE_BYTES + 1)
                if len(raw) > MAX_FILE_BYTES:
                    raise ValueError(f"over {MAX_FILE_BYTES} bytes")
                found += [record for record in _RECORDS.validate_json(raw) if record.active]
            except (OSError, ValueError, ValidationError) as exc:
                log.error("latch file %s is unreadable (%s): ignored", path, type(exc).__name__)
        if found:
            log.warning("holding %d latch(es) kept on the spool volume: %s", len(found), sorted(r.id for r in found))
        return found

    def changed(self, active: list[LatchRecord]) -> bool:
        return self._path is not None and {record.trip_bytes() for record in active} != self._written

    def persist(self, active: list[LatchRecord]) -> None:
        """Write the latches held now, durably, when they changed (blocking: run it off the event loop)."""
        if self._path is None:
            return
        marks = {record.trip_bytes() for record in active}
        with self._lock:
            if marks == self._written:
                return
            path = self._path
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(path, _RECORDS.dump_json(sorted(active, key=lambda r: r.id)))
            self._written = marks
