"""`manage.py prepare_release`, the migrations Job of every release (deploy/k8s): migrations, the audit store's
indexes and vector index, and the audit streams, under the `release` NATS identity on servers started with the
shipped permissions. Run twice, it changes nothing."""

import asyncio
from pathlib import Path

import nats
import pymongo
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

import audit.store
from audit.store.mongo import MongoAuditStore
from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM
from cio_kernel.audit_stream import AUDIT_STREAM, bytes_for
from deploy import access
from deploy.servers import free_port, mongo_server
from tests.plugins.mongo import MONGO_DB
from tests.secured_stack import Secured


@pytest.fixture
def release(tmp_path: Path, settings, monkeypatch, transactional_db):
    """The command's environment as the Job's: the `release` identity, the MongoDB audit store."""
    secured = Secured(tmp_path)
    settings.NATS_URL = f"nats://127.0.0.1:{secured.nats.port}"
    settings.CIO_NATS_INBOX_PREFIX = access.NATS_ROLES["release"].inbox_prefix
    settings.CIO_AUDIT_STREAM_RETENTION_HOURS = 24.0
    settings.CIO_AUDIT_EXPECTED_RATE_PER_DAY = 100_000.0
    settings.CIO_AUDIT_REPLICAS = 1
    monkeypatch.setenv("CIO_NATS_USER", "release")
    monkeypatch.setenv("CIO_NATS_PASSWORD", secured.passwords["nats:release"])
    yield secured
    secured.nats.stop()
    secured.redis.stop()


def _use_store(monkeypatch, url: str) -> MongoAuditStore:
    store = MongoAuditStore.from_uri(url)
    monkeypatch.setattr(audit.store, "_store", store)
    return store


def _run(capsys) -> str:
    call_command("prepare_release", verbosity=0)
    return capsys.readouterr().out


async def _stream_limits(url: str) -> tuple[float | None, int | None, int | None]:
    nc = await nats.connect(url, inbox_prefix=access.NATS_ROLES["gate"].inbox_prefix)
    try:
        config = (await nc.jetstream().stream_info(AUDIT_STREAM)).config
        return config.max_age, config.max_bytes, config.num_replicas
    finally:
        await nc.close()


def test_prepare_release_creates_everything_once_and_then_changes_nothing(release, mongo_url, monkeypatch, capsys):
    _use_store(monkeypatch, mongo_url)
    first = _run(capsys)
    assert f"{AUDIT_STREAM}: created" in first
    assert f"{CHECKPOINT_STREAM}: created" in first
    # The test server defines the vector index itself (no search-index commands): found by a search that answers.
    assert "incident_embedding: defined by the server" in first
    indexes = pymongo.MongoClient(mongo_url)[MONGO_DB]["audit_logs"].index_information()
    assert {"decision_id_unique", "trace_id", "strategy_key_ts", "chain_seq"} <= set(indexes)

    gate_url = release.nats_url("gate")
    assert asyncio.run(_stream_limits(gate_url)) == (24 * 3600.0, bytes_for(24, 100_000), 1)

    second = _run(capsys)
    assert f"{AUDIT_STREAM}: unchanged" in second
    assert f"{CHECKPOINT_STREAM}: unchanged" in second
    assert asyncio.run(_stream_limits(gate_url)) == (24 * 3600.0, bytes_for(24, 100_000), 1)

    # A release stating a higher rate brings the stream's size up to it.
    settings.CIO_AUDIT_EXPECTED_RATE_PER_DAY = 300_000.0
    assert f"{AUDIT_STREAM}: updated" in _run(capsys)
    assert asyncio.run(_stream_limits(gate_url))[1] == bytes_for(24, 300_000)


def test_prepare_release_stops_when_the_vector_index_is_missing(release, tmp_path, monkeypatch, capsys):
    bare = mongo_server(free_port(), None, tmp_path / "bare-mongo.log").start(timeout_s=30)
    try:
        _use_store(monkeypatch, f"mongodb://127.0.0.1:{bare.port}/{MONGO_DB}?directConnection=true")
        with pytest.raises(CommandError, match="incident_embedding"):
            call_command("prepare_release", verbosity=0)
    finally:
        bare.stop()
