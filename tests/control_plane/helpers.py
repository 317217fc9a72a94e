"""Helpers the control-plane tests share (fixtures are in conftest.py, which no test module imports)."""

import time
from pathlib import Path
from typing import Any

import orjson

from cio_kernel.policy.document import ACTIVE_POLICY_KEY, PolicyDocument

ROOT = Path(__file__).resolve().parents[2]


def redis_policy(client: Any) -> PolicyDocument | None:
    raw = client.get(ACTIVE_POLICY_KEY)
    return PolicyDocument.model_validate_json(raw) if raw else None


def _wait(condition: Any, timeout_s: float) -> float:
    """Poll a condition on a real external process (the gate) until it holds; the timeout only bounds a failing
    test, it asserts no speed."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("condition not met")
        time.sleep(0.02)  # a poll interval while the gate process works
    return time.monotonic() - started


def gate_version(redis_client: Any) -> int | None:
    raw = redis_client.get("gate:heartbeat:flow-gate")
    return orjson.loads(raw)["policy_version"] if raw else None
