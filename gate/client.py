"""`gate.client`, the client's import path from before it had a distribution of its own: the same classes as
`cio_client` (docs/client.md), kept so code written against the whole project goes on working."""

from cio_client.client import OPENING_ACTIONS, ConservativeModeError, GateClient, GateUnavailableError

__all__ = ["OPENING_ACTIONS", "ConservativeModeError", "GateClient", "GateUnavailableError"]
