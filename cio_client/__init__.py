"""The fleet's fail-safe client, published on its own as `petrosa-cio-client` (clients/python, docs/client.md).

A strategy installs that distribution (nats-py, pydantic and orjson besides; neither Django nor the gate) and writes
`from cio_client import GateClient`. This package imports nothing of the project but the kernel's contracts, which
the distribution ships along (tests/unit/test_import_rules.py keeps it so; tests/e2e/test_client_distribution.py
installs the wheel into a clean virtual environment and runs a bot through it against a real gate)."""

from cio_client.client import ConservativeModeError, GateClient, GateUnavailableError

__all__ = ["ConservativeModeError", "GateClient", "GateUnavailableError"]
