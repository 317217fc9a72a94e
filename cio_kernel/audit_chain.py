"""The hash chain that makes the audit trail tamper-evident, one chain per gate so gates never coordinate.

Each gate numbers its audit events 1, 2, 3, … within a chain and links each to the one before:

    hash = sha256("<chain>\\n<seq>\\n<prev>\\n<subject>\\n" + payload)

where `payload` is the event exactly as published (the bytes on the wire, which the audit store keeps verbatim)
and `prev` is the previous event's hash (`GENESIS` for the first). The link travels in NATS headers beside the
event, so the event body stays the contract it always was. A chain id is `<gate id>.<epoch>`: a gate continues
its chain across restarts from the head it keeps in its spool folder, and starts a new epoch when it has none.

`audit_verify` recomputes every hash from the stored payload, so an edited, removed, inserted or reordered
record breaks the chain where it happened, unless whoever did it recomputed the links after it: they are unkeyed.
That, and a cut at the very end, is what the gates' signed checkpoints of their heads are for
(`cio_kernel.audit_checkpoint`).
"""

import hashlib
import re
from dataclasses import dataclass

from cio_kernel.numbers import whole_number

GENESIS = "0" * 64

CHAIN_HEADER = "Cio-Audit-Chain"
SEQ_HEADER = "Cio-Audit-Seq"
PREV_HEADER = "Cio-Audit-Prev"
HASH_HEADER = "Cio-Audit-Hash"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def chain_id(gate_id: str, epoch: int) -> str:
    """A chain id safe in a header, a file name and a spool line: the gate id's safe spelling and an epoch."""
    return f"{_UNSAFE.sub('_', gate_id)[:120] or 'gate'}.{epoch:x}"


def is_chain_id(value: str) -> bool:
    return bool(value) and not _UNSAFE.search(value)


def is_link_hash(value: str) -> bool:
    return bool(_HEX64.fullmatch(value))


def link_hash(chain: str, seq: int, prev: str, subject: str, payload: bytes) -> str:
    digest = hashlib.sha256(f"{chain}\n{seq}\n{prev}\n{subject}\n".encode())
    digest.update(payload)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainLink:
    chain: str
    seq: int
    prev: str
    hash: str

    @classmethod
    def first_after(cls, chain: str, seq: int, prev: str, subject: str, payload: bytes) -> "ChainLink":
        """The link of the event that follows `seq` (whose hash is `prev`) in `chain`."""
        return cls(chain, seq + 1, prev, link_hash(chain, seq + 1, prev, subject, payload))

    def matches(self, subject: str, payload: bytes) -> bool:
        return link_hash(self.chain, self.seq, self.prev, subject, payload) == self.hash

    def header_lines(self) -> bytes:
        return (
            f"{CHAIN_HEADER}: {self.chain}\r\n{SEQ_HEADER}: {self.seq}\r\n"
            f"{PREV_HEADER}: {self.prev}\r\n{HASH_HEADER}: {self.hash}\r\n"
        ).encode()

    def headers(self) -> dict[str, str]:
        return {CHAIN_HEADER: self.chain, SEQ_HEADER: str(self.seq), PREV_HEADER: self.prev, HASH_HEADER: self.hash}

    def token(self) -> bytes:
        """The link as one space-free token, for the gate's spool line."""
        return f"{self.chain}|{self.seq}|{self.prev}|{self.hash}".encode()

    @classmethod
    def from_token(cls, token: bytes) -> "ChainLink | None":
        parts = token.decode(errors="replace").split("|")
        if len(parts) != 4:
            return None
        return cls._checked(*parts)

    @classmethod
    def from_headers(cls, headers: dict[str, str] | None) -> "ChainLink | None":
        """The link carried by a message, or None when it carries none or a malformed one."""
        if not headers or CHAIN_HEADER not in headers:
            return None
        return cls._checked(
            headers.get(CHAIN_HEADER, ""),
            headers.get(SEQ_HEADER, ""),
            headers.get(PREV_HEADER, ""),
            headers.get(HASH_HEADER, ""),
        )

    @classmethod
    def _checked(cls, chain: str, seq: str, prev: str, digest: str) -> "ChainLink | None":
        # ASCII digits only: a header spelled "²" made `int` raise out of the audit ingest's batch (handed back and
        # redelivered for ever), and "٣" was read as link 3.
        number = whole_number(seq)
        if not is_chain_id(chain) or number is None or number < 1:
            return None
        if not is_link_hash(prev) or not is_link_hash(digest):
            return None
        return cls(chain, number, prev, digest)
