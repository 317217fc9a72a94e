"""`make up`'s shell environment file, its short banner's account line and its LLM switch (deploy/devstack.py),
and the local chat-completions stand-in's answer (deploy/dev_llm.py), without starting the stack (the stack
itself: tests/e2e/test_devstack.py)."""

import argparse
import json
import subprocess
from pathlib import Path

import orjson

from cio_kernel.policy.spec import PolicySpec
from deploy import access, dev_llm
from deploy.devstack import accounts_line, llm_env, write_env_file
from strategist.changes import Change, apply_changes

ROOT = Path(__file__).resolve().parents[2]


def test_the_env_file_is_private_quotes_its_values_and_cio_as_switches_the_nats_identity(tmp_path):
    passwords = access.load_or_create_credentials(tmp_path)
    tricky = "redis://u:p$w'd@127.0.0.1:1/0"  # a shell must read it back as written
    path = write_env_file(tmp_path, {"CIO_STATE_DIR": str(tmp_path), "REDIS_URL": tricky}, passwords)
    assert path == tmp_path / "env.sh" and path.stat().st_mode & 0o777 == 0o600
    script = (
        f'source {path} && printf "%s\\n" "$REDIS_URL" && '
        'cio_as canary sh -c \'printf "%s %s %s\\n" "$CIO_NATS_USER" "$CIO_NATS_INBOX_PREFIX" '
        '"$(cat "$CIO_NATS_PASSWORD_FILE")"\' && { cio_as nobody true; echo "refused $?"; }'
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, env={})
    url, canary, refused = result.stdout.splitlines()
    assert url == tricky
    assert canary == f"canary {access.NATS_ROLES['canary'].inbox_prefix} {passwords['nats:canary']}"
    assert refused == "refused 2" and "no identity nobody" in result.stderr
    assert (tmp_path / "credentials" / "nats-canary").stat().st_mode & 0o777 == 0o600


def test_the_banner_names_the_accounts_without_their_passwords_or_tokens():
    lines = [
        "login officer1  role risk_officer  password s3cret-one  API token tok-one",
        "login viewer    role viewer        password (changed)  API token tok-two",
    ]
    shown = accounts_line(lines)
    assert shown == "officer1 (risk_officer), viewer (viewer)"
    assert "s3cret" not in shown and "tok-" not in shown


def _args(llm: bool) -> argparse.Namespace:
    return argparse.Namespace(llm=llm, llm_port=18400)


def test_the_llm_switch_picks_the_stand_in_a_named_server_or_the_rules(monkeypatch):
    for name in ("CIO_DEV_LLM_BASE_URL", "CIO_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    assert llm_env(_args(False)) == {}
    assert llm_env(_args(True)) == {
        "CIO_LLM_BASE_URL": "http://127.0.0.1:18400/v1",
        "CIO_LLM_MODEL": dev_llm.MODEL,
    }
    monkeypatch.setenv("CIO_DEV_LLM_BASE_URL", "http://10.0.0.5:8080/v1")
    assert llm_env(_args(True)) == {"CIO_LLM_BASE_URL": "http://10.0.0.5:8080/v1"}  # model and key: yours
    assert llm_env(_args(False)) == {"CIO_LLM_BASE_URL": "http://10.0.0.5:8080/v1"}


def test_the_stand_ins_proposal_is_a_valid_tightening_of_the_seeded_policy():
    answer = orjson.loads(dev_llm.proposal())
    assert answer["decision"] == "propose" and answer["rationale"]
    spec = PolicySpec.model_validate_json((ROOT / "deploy" / "policies" / "example.json").read_text())
    proposed = apply_changes(spec, [Change.model_validate(change) for change in answer["changes"]])
    before, after = spec.global_rules.max_order_notional_usd, proposed.global_rules.max_order_notional_usd
    assert after == dev_llm.PROPOSED_NOTIONAL_USD < before
    assert json.loads(spec.model_dump_json())["strategies"] == json.loads(proposed.model_dump_json())["strategies"]
