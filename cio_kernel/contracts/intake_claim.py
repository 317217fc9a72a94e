"""`cio.intake.claim.<fingerprint>`: a gate took this request on its fast path, so the stream path skips the copy
the intake stream kept (docs/contracts.md, "Producers that never listen"). Only the claim's subject (the
fingerprint of the request's subject and bytes) and the time JetStream stored it are read; the body says which
gate claimed it, for whoever investigates."""

from pydantic import BaseModel


class IntakeClaim(BaseModel):
    gate_id: str
