"""What the gate's rooms talk through once it started: filled in by `Gate.start`, empty before."""

from dataclasses import dataclass

from nats.aio.client import Client as NATS

from gate.runtime.audit_checkpoints import AuditCheckpointer
from gate.runtime.audit_outbox import AuditOutbox
from gate.runtime.wire import NatsWriter


@dataclass(slots=True)
class Links:
    nc: NATS | None = None
    writer: NatsWriter | None = None
    outbox: AuditOutbox | None = None
    checkpointer: AuditCheckpointer | None = None

    def connected(self) -> NATS | None:
        """The connection when it is up (a publish now would leave), else None."""
        nc = self.nc
        return nc if nc is not None and nc.is_connected else None
