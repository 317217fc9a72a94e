"""`cio.strategist.update`: the control plane's notice that a new policy is active in Redis."""

from pydantic import BaseModel


class PolicyUpdate(BaseModel):
    version: int
    checksum: str
