"""The gate's signed checkpoints of its audit chain (`cio_kernel.audit_checkpoint`), made off the decision path.

`step` runs on a timer (once a second by default), never per intent: when the chain's head moved since the last
acknowledged checkpoint, it signs `(chain, seq, hash, now)` and publishes it to `CIO_AUDIT_CHECKPOINTS`, waiting
for the PubAck. A failed publish is not retried as such: the next step signs the head as it then is, which vouches
for everything the missed one did. The service runs one last step at shutdown, after the outbox has drained, so a
stopped gate's last events are vouched for too.

A gate that crashed signed nothing for its last moments. When its spool is replayed by a successor (the same gate
restarted, which continues the chain and signs its head anyway, or another gate adopting a dead gate's spool), the
successor also signs the head of every other chain it found there: those events come from the spool's own lines,
whose links were checked as they were read, not from the store.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import nats.errors
from nats.aio.client import Client as NATS
from nats.js.errors import BadRequestError, NoStreamResponseError

from cio_kernel.audit_checkpoint import AuditCheckpoint, checkpoint_msg_id, checkpoint_subject
from cio_kernel.audit_stream import checkpoint_stream_config
from cio_kernel.policy.signing import PolicySigner

log = logging.getLogger(__name__)


@dataclass
class CheckpointCounters:
    published: int = 0
    failures: int = 0


def load_signer(path: Path | None) -> PolicySigner | None:
    """The gates' audit signing key, or None (logged) when it is not there: the gate then decides and audits as
    ever, but nothing vouches for its chains and `audit_verify` reports them unsigned."""
    if path is None or not path.exists():
        log.error(
            "no audit signing key at %s (CIO_AUDIT_SIGNING_KEY_FILE): this gate's audit chain is not signed, and "
            "audit_verify will report every record of it as unproven",
            path,
        )
        return None
    try:
        return PolicySigner.load(path)
    except (OSError, ValueError) as exc:
        log.error("the audit signing key at %s is unreadable (%s): this gate's audit chain is not signed", path, exc)
        return None


@dataclass
class AuditCheckpointer:
    nc: NATS
    signer: PolicySigner
    gate_id: str
    tip: Callable[[], tuple[str, int, str]]  # the outbox's (chain, seq, hash)
    stream: str
    subject_prefix: str
    now: Callable[[], float]
    replayed: dict[str, tuple[int, str]] = field(default_factory=dict)  # other chains' heads, signed once
    timeout_s: float = 2.0
    counters: CheckpointCounters = field(default_factory=CheckpointCounters)
    replicas: int = 1  # CIO_AUDIT_REPLICAS: as many copies as the audit events they vouch for

    def __post_init__(self) -> None:
        self._published: tuple[str, int] | None = None  # the last acknowledged (chain, seq)

    async def ensure_stream(self) -> bool:
        """Create the checkpoint stream if it is missing (an existing one is used as it is)."""
        js = self.nc.jetstream()
        try:
            try:
                await js.add_stream(checkpoint_stream_config(self.stream, self.subject_prefix, replicas=self.replicas))
            except BadRequestError:
                await js.stream_info(self.stream)
        except (nats.errors.Error, TimeoutError) as exc:
            log.error("audit checkpoint stream %s unavailable: %r (checkpoints are retried)", self.stream, exc)
            return False
        return True

    async def step(self) -> bool:
        """Sign and publish the head when it moved (and, once, the heads of chains found in replayed spool
        segments); True when the head's checkpoint was acknowledged."""
        for chain, (seq, digest) in list(self.replayed.items()):
            if await self._publish(chain, seq, digest):
                del self.replayed[chain]
        chain, seq, digest = self.tip()
        if seq == 0 or self._published == (chain, seq):
            return False
        if not await self._publish(chain, seq, digest):
            return False
        self._published = (chain, seq)
        return True

    async def _publish(self, chain: str, seq: int, digest: str) -> bool:
        checkpoint = AuditCheckpoint.sign(
            self.signer, chain, seq, digest, self.gate_id, datetime.fromtimestamp(self.now(), UTC)
        )
        try:
            await self.nc.jetstream().publish(
                checkpoint_subject(chain, self.subject_prefix),
                checkpoint.model_dump_json().encode(),
                timeout=self.timeout_s,
                headers={"Nats-Msg-Id": checkpoint_msg_id(checkpoint)},
            )
        except NoStreamResponseError:
            self.counters.failures += 1
            log.error("audit checkpoint stream %s is gone; recreating it", self.stream)
            await self.ensure_stream()
            return False
        except (nats.errors.Error, TimeoutError) as exc:
            self.counters.failures += 1
            if self.counters.failures in (1, 10) or self.counters.failures % 100 == 0:
                log.warning("audit checkpoint %s@%d not published (%r); the next one covers it", chain, seq, exc)
            return False
        self.counters.published += 1
        return True
