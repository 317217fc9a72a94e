"""A MongoDB-wire server (deploy/mongo_wire.py) per test: in memory, or kept on disk to stop and start again."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.embedding import DIMENSIONS
from audit.store.mongo import VECTOR_INDEX
from deploy.servers import ServerProcess, free_port, mongo_server

MONGO_DB = "cio_test"


def _mongo(tmp_path: Path, persistent: bool) -> ServerProcess:
    return mongo_server(
        free_port(),
        tmp_path / "mongo" / "data.sqlite3" if persistent else None,
        tmp_path / "mongo.log",
        vector_indexes=(f"{MONGO_DB}.incidents.embedding:{DIMENSIONS}:{VECTOR_INDEX}",),
    )


@pytest.fixture
def mongo_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    """In memory: fast, gone when stopped."""
    proc = _mongo(tmp_path, persistent=False).start(timeout_s=30)
    yield proc
    proc.stop()


@pytest.fixture
def persistent_mongo_proc(tmp_path: Path) -> Iterator[ServerProcess]:
    """Kept on disk, so the server can be stopped and started again with its data (an outage, not a wipe)."""
    proc = _mongo(tmp_path, persistent=True).start(timeout_s=30)
    yield proc
    proc.stop()


@pytest.fixture
def mongo_url(mongo_proc: ServerProcess) -> str:
    return f"mongodb://127.0.0.1:{mongo_proc.port}/{MONGO_DB}?directConnection=true"
