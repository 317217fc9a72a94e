"""`make up`'s local chat-completions server for `CIO_DEV_LLM=1` (deploy/dev_llm.py) as the process `make up`
starts: it answers the OpenAI protocol on its port with the proposal the Strategist's LLM brain validates
(tests/unit/test_devstack_env.py checks that proposal against the seeded policy), says so in timestamped lines,
and stops on SIGTERM."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from deploy import dev_llm
from deploy.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_the_stand_in_answers_chat_completions_on_its_port_and_logs_no_prompt():
    port = free_port()
    argv = [sys.executable, "-m", "deploy.dev_llm", "--port", str(port)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 20.0, proc)
        prompt = "portfolio concentrated in BTCUSDT; the secret word is zebra"
        request = {"model": dev_llm.MODEL, "messages": [{"role": "user", "content": prompt}]}
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=request, timeout=10)
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == dev_llm.proposal()
        assert httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={}, timeout=10).status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    lines = output.decode().splitlines()
    assert any("/v1/chat/completions (model cio-dev-standin)" in line for line in lines), lines
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line) for line in lines), lines
    assert b"zebra" not in output
    assert orjson.loads(dev_llm.proposal())["decision"] == "propose"
