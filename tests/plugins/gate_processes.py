"""Gate processes (`python -m gate`) on the test's own NATS and Redis, killed after the test."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.e2e.gate_process import GateProcess


@pytest.fixture
async def spawn_gate(nats_url: str, redis_url: str, tmp_path: Path, nc) -> AsyncIterator[Callable[..., object]]:
    spawned: list[GateProcess] = []

    async def spawn(gate_id: str, **env: str) -> GateProcess:
        process = GateProcess(gate_id, nats_url, redis_url, tmp_path / "spool", tmp_path / f"{gate_id}.log", **env)
        spawned.append(process)
        return await process.start(nc)

    yield spawn
    for process in spawned:
        process.kill()
