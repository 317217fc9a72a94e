"""The wall between the gate and everything else, enforced by walking every module's imports (docs/architecture.md).

- `cio_kernel` (contracts, policy document, subjects, keys, redaction) depends on no part of the project and no
  Django: every side may stand on it, so it must stand on nothing of theirs.
- `gate` imports no Django and nothing of the control plane: it must start and decide with Django absent.
- Outside `gate`, nothing imports the gate's interior (`gate.runtime`, `gate.decision`): what the control plane,
  the canary or the deploy tooling needs from the gate belongs in the kernel. Tests and benchmarks exercise the
  interior on purpose and are exempt.
- The canary runs outside the cluster and imports at most the kernel.
- Bridges (`bridges/`, adapters to systems we do not own) import at most the kernel and themselves.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("cio_kernel", "gate", "policies", "cio_site", "canary", "deploy", "audit", "strategist", "bridges")
GATE_INTERIOR = ("gate.runtime", "gate.decision")


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str
    rule: str


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def imports_of(source: str, module: str) -> set[str]:
    """Every absolute module name `source` imports, including imports inside functions (lazy imports count too)."""
    names: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def violations(module: str, imported: set[str]) -> list[Violation]:
    found = []
    top = module.split(".")[0]
    for name in sorted(imported):
        if top == "cio_kernel" and (
            _within(name, "django") or any(_within(name, p) for p in PROJECT_PACKAGES if p != "cio_kernel")
        ):
            found.append(Violation(module, name, "the kernel imports no project package and no Django"))
        if top == "gate" and (
            _within(name, "django")
            or _within(name, "rest_framework")
            or any(_within(name, p) for p in ("policies", "cio_site", "deploy", "canary", "audit", "strategist"))
        ):
            found.append(Violation(module, name, "the gate imports no Django and nothing of the control plane"))
        if top not in ("gate", "tests", "bench") and any(_within(name, p) for p in GATE_INTERIOR):
            found.append(Violation(module, name, "only the gate (and its tests/benchmarks) import its interior"))
        if top == "canary" and (
            _within(name, "django")
            or any(_within(name, p) for p in PROJECT_PACKAGES if p not in ("cio_kernel", "canary"))
        ):
            found.append(Violation(module, name, "the canary imports at most the kernel"))
        if top == "bridges" and (
            _within(name, "django")
            or any(_within(name, p) for p in PROJECT_PACKAGES if p not in ("cio_kernel", "bridges"))
        ):
            found.append(Violation(module, name, "a bridge imports at most the kernel"))
    return found


def project_modules() -> dict[str, Path]:
    modules = {}
    for top in (*PROJECT_PACKAGES, "tests", "bench"):
        for path in (ROOT / top).rglob("*.py") if (ROOT / top).is_dir() else ():
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def test_the_project_keeps_the_import_rules() -> None:
    modules = project_modules()
    assert {"cio_kernel.subjects", "gate.runtime.service", "policies.services", "bridges.engine_state.convert"} <= (
        modules.keys()
    )
    found = [v for name, path in modules.items() for v in violations(name, imports_of(path.read_text(), name))]
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("cio_kernel.contracts.fresh", "from gate.decision.evaluate import evaluate", "the kernel imports no"),
        ("cio_kernel.policy.fresh", "import django.conf", "the kernel imports no"),
        ("gate.runtime.fresh", "def lazy():\n    from django.conf import settings", "the gate imports no Django"),
        ("gate.decision.fresh", "from policies.models import PolicyVersion", "the gate imports no Django"),
        ("policies.fresh", "from gate.runtime import subjects", "only the gate"),
        ("cio_site.fresh", "import gate.decision.controls", "only the gate"),
        ("canary.fresh", "from gate.config import GateSettings", "the canary imports at most"),
        ("canary.probe.fresh", "from ..watch import x\nfrom policies import live", "the canary imports at most"),
        ("bridges.engine_state.fresh", "from deploy.fake_tradeengine import demo_book", "a bridge imports at most"),
        ("bridges.engine_state.fresh", "from gate.config import GateSettings", "a bridge imports at most"),
    ],
)
def test_a_forbidden_import_is_reported(module: str, source: str, rule: str) -> None:
    found = violations(module, imports_of(source, module))
    assert [v.rule for v in found if v.rule.startswith(rule)], found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("policies.fresh", "from cio_kernel.policy.spec import PolicySpec\nfrom gate.config import GateSettings"),
        ("canary.fresh", "from cio_kernel.heartbeats import read_gate_heartbeats\nimport nats"),
        ("gate.runtime.fresh", "from gate.decision.evaluate import evaluate\nfrom cio_kernel import subjects"),
        ("tests.unit.fresh", "from gate.runtime.pipeline import DecisionPipeline\nfrom django.test import Client"),
    ],
)
def test_an_allowed_import_is_not_reported(module: str, source: str) -> None:
    assert violations(module, imports_of(source, module)) == []


def test_relative_imports_resolve_to_the_package_they_name() -> None:
    assert imports_of("from ..decision import evaluate", "gate.runtime.service") == {"gate.decision"}
    assert imports_of("from . import wire", "gate.runtime.service") == {"gate.runtime"}
