"""CIO_AUDIT's size limit derives from a stated window and rate and a measured size per event
(cio_kernel/audit_stream.py, docs/nats-cluster.md): the measurement, the arithmetic and the start-up warning."""

import logging

import nats
import pytest

from audit.ingest import AuditIngest
from audit.records import DecisionRecord
from audit.store.django_db import DjangoAuditStore
from cio_kernel.audit_chain import GENESIS, ChainLink
from cio_kernel.audit_stream import (
    AUDIT_EVENT_STORED_BYTES,
    AUDIT_STREAM,
    audit_stream_config,
    bytes_for,
    hours_held,
    retention_shortfall,
)
from gate.config import GateSettings
from tests.audit.ingest_helpers import publish_records
from tests.audit.records import KINDS, event
from tests.factories import make_intent, ta_bot_body

EVENTS = 200


def typical_records(count: int) -> list[DecisionRecord]:
    """Decisions on today's TA bot intents, chained as a gate's outbox chains them."""
    records, prev = [], GENESIS
    for i in range(count):
        intent = make_intent(**ta_bot_body(f"ta-{i:06d}")).model_dump(mode="json", exclude_none=True)
        e = event(i, "cio-gate-0", intent=intent, strategy_id=intent["strategy_id"])
        payload = e.model_dump_json().encode()
        subject = f"cio.audit.decision.{KINDS[e.decision]}"
        link = ChainLink.first_after("cio-gate-0.1", i, prev, subject, payload)
        prev = link.hash
        records.append(DecisionRecord.of(e, subject, payload, link))
    return records


async def test_a_typical_audit_event_takes_about_the_stated_bytes_in_the_stream(nats_url):
    records = typical_records(EVENTS)
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().add_stream(audit_stream_config())
        await publish_records(nc, records)
        state = (await nc.jetstream().stream_info(AUDIT_STREAM)).state
    finally:
        await nc.close()
    assert state.messages == EVENTS
    stored = state.bytes / EVENTS
    body = sum(len(r.payload) for r in records) / EVENTS
    print(f"audit event: {body:.0f} B of JSON, {stored:.0f} B stored per message")
    # The constant the limits derive from is the measured size, within 15 %.
    assert 0.85 * AUDIT_EVENT_STORED_BYTES <= stored <= 1.15 * AUDIT_EVENT_STORED_BYTES


def test_the_issue_arithmetic_and_the_derived_limits():
    eight_gib = 8 * 1024**3
    # 10M decisions a day: 8 GiB holds about 14 h of events, nowhere near the 7 days of the old max age.
    assert 14 < hours_held(eight_gib, 10_000_000) < 15
    assert retention_shortfall(7 * 86_400.0, eight_gib, 10_000_000) is not None
    # Derived from a window and a rate, the size holds the window exactly (the default: a week at 1M a day).
    settings = GateSettings(audit_stream_retention_hours=72, audit_expected_rate_per_day=10_000_000)
    assert settings.audit_max_age_s == 72 * 3600.0
    assert settings.audit_max_bytes == bytes_for(72, 10_000_000) == 42_900_000_000
    assert settings.audit_retention_warning is None
    assert GateSettings().audit_retention_warning is None
    # Set by hand below what the age needs at the stated rate: the gate says so.
    short = GateSettings(audit_max_bytes=eight_gib, audit_max_age_s=7 * 86_400.0, audit_expected_rate_per_day=1e7)
    assert "CIO_AUDIT_MAX_BYTES" in (short.audit_retention_warning or "")


@pytest.mark.django_db
async def test_the_ingest_warns_at_start_when_the_stream_cannot_hold_its_age(nats_url, caplog):
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().add_stream(audit_stream_config(max_age_s=7 * 86_400.0, max_bytes=8 * 1024**3))
        ingest = AuditIngest(nc, DjangoAuditStore(), expected_rate_per_day=10_000_000)
        with caplog.at_level(logging.WARNING, logger="audit.ingest"):
            await ingest.start()
        assert any("holds about 14" in r.getMessage() for r in caplog.records)
        # At a rate it can hold for a week (8 GiB / 1,430 B / 7 days = 858k a day), the same stream is fine.
        assert await AuditIngest(nc, DjangoAuditStore(), expected_rate_per_day=800_000).retention_check() is None
    finally:
        await nc.close()


async def test_the_gate_warns_at_start_when_the_stream_it_finds_cannot_hold_its_age(make_gate, nats_url, caplog):
    nc = await nats.connect(nats_url)
    try:
        # Created by an older release with the old defaults: the gate uses it as it is, and says what it holds.
        await nc.jetstream().add_stream(audit_stream_config(max_age_s=7 * 86_400.0, max_bytes=8 * 1024**3))
    finally:
        await nc.close()
    with caplog.at_level(logging.WARNING, logger="gate.runtime.service"):
        await make_gate(audit_expected_rate_per_day=10_000_000)
    assert [r for r in caplog.records if "holds about 14.4 h" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gate.runtime.service"):
        await make_gate(gate_id="test-gate-2", audit_expected_rate_per_day=500_000)
    assert not [r for r in caplog.records if "holds about" in r.getMessage()]
