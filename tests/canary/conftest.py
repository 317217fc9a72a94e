"""The canary drives real gate processes (tests/e2e)."""

from tests.e2e.conftest import spawn_gate  # noqa: F401
