"""No credential reaches an audit record or a log line, whatever a strategy or an operator puts in."""

import orjson
import pytest

from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate, audit_events, collect, request

pytestmark = pytest.mark.e2e

SECRETS = [
    "AKIAEXAMPLESECRET1",
    "hunter2-password",
    "sk-live-0123456789abcdef",
    "eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "natsPassw0rd!",
    "seed-words-abandon-ability",
]


def _poisoned_intent(**overrides):
    return live_intent_body(
        metadata={"exchange": {"api_key": SECRETS[0], "api_secret": SECRETS[2]}, "note": "fine"},
        rationale=f"placed with password={SECRETS[1]} and Authorization: Bearer {SECRETS[3]}",
        exchange_credentials={"passphrase": SECRETS[5]},
        **overrides,
    )


@pytest.mark.parametrize("log_format", ["text", "json"])  # JSON escapes: a secret must not hide behind them
async def test_secrets_in_intents_stay_out_of_audit_and_logs(tmp_path, spawn_gate, redis, nc, nats_url, log_format):
    await activate(redis, nc, make_spec(), 1)
    # The gate is given credentials in its connection URL, as a deployment would.
    user_url = nats_url.replace("nats://", f"nats://gate:{SECRETS[4]}@")
    gate = await spawn_gate(
        f"gate-secrets-{log_format}", NATS_URL=user_url, CIO_LOG_LEVEL="DEBUG", CIO_LOG_FORMAT=log_format
    )
    signals = await collect(nc, "signals.trading.>")

    approved, _ = await request(nc, _poisoned_intent(signal_id="ok"))
    rejected, _ = await request(nc, _poisoned_intent(signal_id="bad", confidence=5))  # VAL_ERR keeps raw input
    garbage = f'{{"api_key": "{SECRETS[0]}", "password": "{SECRETS[1]}", broken'.encode()
    invalid, _ = await request(nc, garbage)
    assert approved.data.decision == "APPROVED"
    assert rejected.error.code == "VAL_ERR" and invalid.error.code == "VAL_ERR"

    records = await audit_events(nc, expected=3)
    assert len(records) == 3
    await gate.terminate()
    evidence = {
        "audit": b"".join(r.event.model_dump_json().encode() for r in records).decode(),
        "log": gate.log(),
    }
    for where, text in evidence.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into the {where}"
    assert "[REDACTED]" in evidence["audit"]
    assert "gate:[REDACTED]@" in evidence["log"]  # the URL was logged, its password was not
    if log_format == "json":
        lines = [orjson.loads(line) for line in evidence["log"].splitlines()]  # every line is one JSON object
        assert lines and all(line["ts"] and line["component"] == "gate[gate-secrets-json]" for line in lines)

    # The promoted signal is the strategy's own order and goes to the trade engine unchanged.
    [signal] = await signals.wait_for(1)
    assert orjson.loads(signal.data)["metadata"]["exchange"]["api_key"] == SECRETS[0]
