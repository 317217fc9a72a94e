"""`python -m canary halt` refuses to run without an operator and a reason it can record: the break-glass
CronJob (deploy/k8s/canary/resources/break-glass.yaml) passes them as `$(CIO_BREAK_GLASS_OPERATOR)` and
`$(CIO_BREAK_GLASS_REASON)`, empty in the manifest, so a run started without setting them must halt nothing. No
server is needed: the refusal comes before any connection (and a run that got further would exit 1, not 2)."""

import re
from typing import Any

import pytest

from canary.__main__ import USAGE, main, parser
from tests.k8s_rendered import documents

REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _break_glass_command(env: dict[str, str]) -> list[str]:
    """The CronJob's command as the kubelet runs it: `$(VAR)` replaced by the container's variable (the manifest's
    values, overridden by `env` as `kubectl set env` would), a reference to an unset variable left as written."""
    (job,) = [d for d in documents("canary", "resources", "break-glass.yaml") if d["kind"] == "CronJob"]
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    values = {e["name"]: e["value"] for e in container["env"] if "value" in e} | env
    values = {k: v for k, v in values.items() if v is not None}

    def expand(arg: str) -> str:
        return REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), arg)

    return [expand(arg) for arg in container["command"]]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, str]:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    return stopped.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({}, "--operator: must not be empty"),  # started as the manifest stands
        ({"CIO_BREAK_GLASS_OPERATOR": "alice"}, "--reason: must not be empty"),
        ({"CIO_BREAK_GLASS_OPERATOR": "  ", "CIO_BREAK_GLASS_REASON": "fleet cluster unreachable"}, "--operator"),
        # `kubectl set env ... CIO_BREAK_GLASS_OPERATOR-` removes it: the kubelet then passes the reference as is.
        ({"CIO_BREAK_GLASS_OPERATOR": None, "CIO_BREAK_GLASS_REASON": "x"}, "$(CIO_BREAK_GLASS_OPERATOR) was not"),
    ],
)
def test_the_break_glass_job_refuses_to_halt_without_an_operator_and_a_reason(env, refused, capsys):
    command = _break_glass_command(env)
    assert command[:4] == ["python", "-m", "canary", "halt"]
    code, err = _run(command[3:], capsys)
    assert code == USAGE and refused in err


def test_with_both_set_the_job_passes_them_to_the_halt_as_given():
    command = _break_glass_command(
        {"CIO_BREAK_GLASS_OPERATOR": "alice", "CIO_BREAK_GLASS_REASON": "fleet cluster unreachable"}
    )
    args = parser().parse_args(command[3:])
    assert (args.command, args.operator, args.reason) == ("halt", "alice", "fleet cluster unreachable")
