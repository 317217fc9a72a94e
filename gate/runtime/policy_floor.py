"""The gate's version floor: the highest policy version it knows the control plane activated, kept on the spool
volume so that a restarted gate never adopts anything older (docs/policy.md, "No rollback").

Whoever can write Redis can put back an older document the control plane genuinely signed: its signature holds,
only its version gives it away. The floor is a `PolicySeal` (a document's signed fields without its spec), so
only the control plane can raise it: a seal for a version that was never activated cannot be made without the
signing key, and a forged floor would otherwise lock the gate out of every genuine policy.

Each gate writes its own file, `<spool>/policy-floor.<gate id>.json`, atomically (a temporary file, fsync,
rename, fsync of the folder), and at start reads every such file in the spool folder, so a restarted gate with
a new id (the default id has the pid in it) still knows what its predecessors adopted. A file that does not parse
or whose seal does not verify is ignored and logged: the gate then learns its floor as a brand-new gate does.
"""

import logging
import threading
from pathlib import Path

from pydantic import ValidationError

from cio_kernel.policy.document import PolicySeal
from cio_kernel.policy.signing import PolicyVerifier
from gate.runtime.durable_file import replace_durably

log = logging.getLogger(__name__)

FILE_PREFIX = "policy-floor."
MAX_FILE_BYTES = 4096  # a seal is a few hundred bytes


def floor_file(folder: Path, gate_id: str) -> Path:
    # The audit outbox's spelling of the id: two gates whose ids spell the same cannot run on one volume (the
    # outbox's spool lock), so each file has a single writer.
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in gate_id) or "gate"
    return folder / f"{FILE_PREFIX}{safe}.json"


class PolicyFloor:
    def __init__(self, folder: Path | None, gate_id: str, verifier: PolicyVerifier | None) -> None:
        """`folder` None keeps the floor in memory only."""
        self._folder = folder
        self._path = floor_file(folder, gate_id) if folder is not None else None
        self._verifier = verifier
        self.seal: PolicySeal | None = None
        self.source = ""  # where the floor came from: a file, "adopted", a peer, the control plane
        self.unreadable = 0  # floor files ignored at start (unparseable, or not signed by a trusted key)
        self._written = 0  # the version this gate's file holds
        self._write_lock = threading.Lock()
        self._refused: tuple[int, str] | None = None

    @property
    def version(self) -> int:
        return self.seal.version if self.seal is not None else 0

    def load(self) -> None:
        """Take the highest floor that verifies among every gate's file in the spool folder."""
        if self._folder is None or not self._folder.is_dir():
            return
        for path in sorted(self._folder.glob(f"{FILE_PREFIX}*.json")):
            seal = self._read(path)
            if seal is None:
                self.unreadable += 1
                continue
            if path == self._path:
                self._written = seal.version
            if seal.version > self.version:
                self.seal, self.source = seal, f"file {path.name}"
        if self.seal is not None:
            log.info("policy floor v%d (from %s)", self.version, self.source)

    def _read(self, path: Path) -> PolicySeal | None:
        try:
            with path.open("rb") as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                raise ValueError(f"over {MAX_FILE_BYTES} bytes")
            seal = PolicySeal.model_validate_json(raw)
        except (OSError, ValueError, ValidationError) as exc:  # ValidationError is a ValueError; named for the reader
            log.error("policy floor file %s is unreadable (%s): ignored", path, type(exc).__name__)
            return None
        if not seal.verified_by(self._verifier):
            log.error("policy floor file %s (v%d) is not signed by a trusted key: ignored", path, seal.version)
            return None
        return seal

    def raise_to(self, seal: PolicySeal, source: str, verified: bool = False) -> bool:
        """Raise the floor to `seal` if it is higher; unless `verified` (a document this gate verified), only if
        its signature verifies. Returns whether the floor rose."""
        if seal.version <= self.version:
            return False
        if not verified:
            key = (seal.version, seal.signature)
            if key == self._refused:
                return False  # the same bad seal again (a peer beats every second): verified once is enough
            if not seal.verified_by(self._verifier):
                self._refused = key
                log.error("refused a policy floor v%d from %s: not signed by a trusted key", seal.version, source)
                return False
        self.seal, self.source = seal, source
        return True

    @property
    def unwritten(self) -> bool:
        return self._path is not None and self.version > self._written

    def persist(self) -> None:
        """Write the current floor to this gate's file, durably (blocking: run it off the event loop)."""
        seal, path = self.seal, self._path
        if seal is None or path is None:
            return
        with self._write_lock:
            if seal.version <= self._written:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(path, seal.model_dump_json().encode())
            self._written = seal.version
