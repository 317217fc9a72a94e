"""What the gate's rooms (intake, notices, beats) share: the links filled in by `Gate.start`, and the parts every
room reads or updates, built once by `Gate`."""

from dataclasses import dataclass

from nats.aio.client import Client as NATS

from cio_kernel.contracts.heartbeat import GateCounters
from gate.config import GateSettings
from gate.decision.state import GateState
from gate.runtime.audit_checkpoints import AuditCheckpointer
from gate.runtime.audit_outbox import AuditOutbox
from gate.runtime.clock import Clock
from gate.runtime.latch_sync import LatchSync
from gate.runtime.policy_sync import PolicySync
from gate.runtime.wire import NatsWriter


@dataclass(slots=True)
class Links:
    """What the rooms talk through once the gate started; empty before."""

    nc: NATS | None = None
    writer: NatsWriter | None = None
    outbox: AuditOutbox | None = None
    checkpointer: AuditCheckpointer | None = None

    def connected(self) -> NATS | None:
        """The connection when it is up (a publish now would leave), else None."""
        nc = self.nc
        return nc if nc is not None and nc.is_connected else None


@dataclass(frozen=True, slots=True)
class Shared:
    settings: GateSettings
    clock: Clock
    state: GateState  # what decisions read: the book, latches, promotions, overrides
    counters: GateCounters  # what the heartbeat reports
    policy_sync: PolicySync
    latch_sync: LatchSync
    links: Links
