"""`python -m canary` as cron runs it, against a real gate process: OK while the gate beats; when the gate stops,
exit 1 and an email through the local SMTP server, once; recovery mail when it is back. And the break glass:
`python -m canary halt` halts a running gate through Redis (a new signed version), or by the signed NATS notice
when Redis is down."""

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from cio_kernel.policy.document import PolicyDocument
from deploy.mail_catcher import MailCatcher
from tests.factories import TEST_SIGNER, make_spec
from tests.integration.helpers import activate

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def smtp():
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


async def canary(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canary", *args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_the_canary_alarms_once_when_the_gate_stops_and_says_when_it_is_back(
    spawn_gate, redis, nc, nats_url, smtp, tmp_path
):
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("canary-gate")
    common = [
        "--nats-url",
        nats_url,
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        str(smtp.port),
        "--mail-to",
        "ops@example.test",
        "--state-file",
        str(tmp_path / "canary.json"),
        "--timeout",
        "1",
    ]
    code, out = await canary(*common, "--expect-state", "active", "--min-policy-version", "1")
    assert code == 0 and out.startswith("CANARY OK gate=canary-gate v1 active"), out

    await gate.terminate()
    code, out = await canary(*common)
    assert code == 1 and "gate_unreachable" in out and "alarmed: email" in out, out
    code, _ = await canary(*common)
    assert code == 1  # still down, held back: one alarm per outage window
    assert [s.split(":")[0] for s in smtp.subjects()] == ["CANARY ALARM"]

    await spawn_gate("canary-gate-2")
    code, out = await canary(*common)
    assert code == 0 and "canary-gate-2" in out
    assert [s.split(":")[0] for s in smtp.subjects()] == ["CANARY ALARM", "CANARY RECOVERED"]


async def test_without_any_alarm_channel_an_outage_exits_3(nats_url, tmp_path):
    code, out = await canary("--nats-url", nats_url, "--timeout", "0.5", "--state-file", str(tmp_path / "s.json"))
    assert code == 3 and "no responders" in out


@pytest.fixture
def break_glass_key(tmp_path) -> Path:
    key = tmp_path / "break-glass.key"
    key.write_text(base64.b64encode(TEST_SIGNER.private_key.private_bytes_raw()).decode())
    return key


async def _trading_state(nc) -> str:
    reply = await nc.request("cio.gate.ping", b"", timeout=2)
    return orjson.loads(reply.data)["trading_state"]


async def test_break_glass_halts_through_redis_with_a_signed_version(
    spawn_gate, redis, nc, nats_url, redis_url, break_glass_key
):
    await activate(redis, nc, make_spec(max_order_notional_usd=10_000), 4)
    await spawn_gate("halt-gate")
    code, out = await canary(
        "--nats-url",
        nats_url,
        "halt",
        "--redis-url",
        redis_url,
        "--signing-key",
        str(break_glass_key),
        "--operator",
        "alice",
        "--reason",
        "cluster unreachable",
    )
    assert code == 0 and "HALTED via redis" in out and "v5" in out, out
    document = PolicyDocument.model_validate_json(await redis.get("policy:active"))
    assert document.version == 5 and document.spec.global_rules.trading_state == "halted"
    assert document.spec.global_rules.max_order_notional_usd == 10_000  # nothing else changed
    assert document.activated_by == "break-glass:alice: cluster unreachable"
    for _ in range(100):
        if await _trading_state(nc) == "halted":
            break
        await asyncio.sleep(0.05)  # the gate (another process) re-reads on the notice
    assert await _trading_state(nc) == "halted"


async def test_break_glass_without_redis_halts_by_signed_notice(
    spawn_gate, redis, nc, nats_url, redis_proc, break_glass_key
):
    await activate(redis, nc, make_spec(), 2)
    await spawn_gate("notice-gate", CIO_POLICY_MAX_AGE_S="600")
    redis_proc.stop()
    code, out = await canary(
        "--nats-url",
        nats_url,
        "halt",
        "--redis-url",
        f"redis://127.0.0.1:{redis_proc.port}/0",
        "--signing-key",
        str(break_glass_key),
        "--operator",
        "bob",
        "--reason",
        "Redis gone",
    )
    assert code == 0 and "HALTED via notice" in out, out
    for _ in range(100):
        if await _trading_state(nc) == "halted":
            break
        await asyncio.sleep(0.05)
    assert await _trading_state(nc) == "halted"


async def test_break_glass_with_another_key_changes_nothing(spawn_gate, redis, nc, nats_url, redis_url, tmp_path):
    from cio_kernel.policy.signing import PolicySigner

    await activate(redis, nc, make_spec(), 3)
    await spawn_gate("forged-gate")
    forged = tmp_path / "not-the-key"
    forged.write_text(base64.b64encode(PolicySigner.generate().private_key.private_bytes_raw()).decode())
    _, out = await canary(
        "--nats-url",
        nats_url,
        "halt",
        "--redis-url",
        redis_url,
        "--signing-key",
        str(forged),
        "--operator",
        "mallory",
        "--reason",
        "x",
    )
    assert PolicyDocument.model_validate_json(await redis.get("policy:active")).version == 3
    assert await _trading_state(nc) == "active"  # the gate refused the notice: not the control plane's key
    assert "HALTED via notice" in out  # what the tool did; the gates' own check is what protects them


async def test_break_glass_after_an_older_policy_was_put_back_halts_by_notice_above_the_gates_floor(
    spawn_gate, redis, nc, nats_url, redis_url, break_glass_key
):
    await activate(redis, nc, make_spec(), 4)
    old = await redis.get("policy:active")
    await activate(redis, nc, make_spec(symbols={"BTCUSDT": {"trading_state": "halted"}}), 7)
    await spawn_gate("floor-gate", CIO_POLICY_MAX_AGE_S="600")
    await redis.set("policy:active", old)  # v4 put back: a v5 built on it would be below the gate's floor (v7)
    code, out = await canary(
        "--nats-url",
        nats_url,
        "halt",
        "--redis-url",
        redis_url,
        "--signing-key",
        str(break_glass_key),
        "--operator",
        "carol",
        "--reason",
        "replayed policy",
    )
    assert code == 0 and "HALTED via notice" in out, out
    assert PolicyDocument.model_validate_json(await redis.get("policy:active")).version == 4  # nothing built on v4
    for _ in range(100):
        if await _trading_state(nc) == "halted":
            break
        await asyncio.sleep(0.05)  # the gate (another process) applies the notice
    assert await _trading_state(nc) == "halted"
