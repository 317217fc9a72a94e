"""The floor plan, enforced by walking every module's imports: one ordered layer table (docs/architecture.md).

A module may import its own top-level package and the packages of lower layers, never a package of its own layer
or a higher one. Every top-level package of the project is in the table (the benchmark, the deploy tooling and the
tests included), so a new package must be placed before anything may import it. Besides the order:

- the kernel imports no Django and, of third-party code, only `KERNEL_THIRD_PARTY`: every side stands on it;
- outside `gate`, only the top layer (tests, benchmarks: they exercise it on purpose) imports the gate's interior
  (`gate.runtime`, `gate.decision`); what others need from the gate belongs in the kernel or `gate.client`;
- the gate, the canary and the bridges import no Django: they start and work with Django absent.

What counts as an import: `import x`, `from x import y` (both `x` and `x.y`: `from gate import runtime` imports the
interior), relative imports (resolved from the package a module is in; an `__init__.py` is its own package),
imports inside functions, and `importlib.import_module` / `__import__` with a literal name; a dynamic name is
itself a violation (name what you import).

`KNOWN_UPWARD` lists the imports that still run up the table today, each to be removed by moving code down (issue
19, "a core below the Django apps"). The test fails when one is added and when one listed is gone (remove it from
the list), so the list only shrinks.
"""

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. Packages in one row stand side by side: none imports another.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cio_kernel",),
    ("gate", "canary", "bridges"),
    ("audit",),
    ("policies",),
    ("cio_site",),
    ("deploy",),
    ("bench", "tests"),
)
LAYER_OF = {package: level for level, row in enumerate(LAYERS) for package in row}
TOP_LAYER = len(LAYERS) - 1
GATE_INTERIOR = ("gate.runtime", "gate.decision")
WITHOUT_DJANGO = ("cio_kernel", "gate", "canary", "bridges")
DJANGO = ("django", "rest_framework")
KERNEL_THIRD_PARTY = frozenset({"pydantic", "orjson", "cryptography", "nats", "redis"})

# (module, package it imports from a higher layer or its own): what the floor plan still has to fix.
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset(
    {
        ("audit.admin", "policies"),
        ("audit.alerting.admin", "policies"),
        ("audit.api.views", "policies"),
        ("audit.signals", "policies"),
        ("audit.selectors", "policies"),
        ("audit.alerting.management.commands.alert_bridge", "cio_site"),
        ("policies.admin", "cio_site"),
        ("policies.api.views", "cio_site"),
        ("policies.strategist.management.commands.strategist_listen", "cio_site"),
        ("policies.tradeconfig.api.views", "cio_site"),
    }
)


@dataclass(frozen=True)
class Violation:
    module: str
    imported: str
    rule: str


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _literal(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def _dynamic_import(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


DYNAMIC = "<dynamic>"


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every absolute name `source` imports (see the module docstring); `DYNAMIC` for an import by computed name."""
    names: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join(parts[: len(parts) - node.level + 1])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            names.add(_literal(node) or DYNAMIC)
    return {name for name in names if name}


def violations(module: str, imported: set[str]) -> list[Violation]:
    found = []
    top = module.split(".")[0]
    level = LAYER_OF.get(top)
    if level is None:
        return [Violation(module, "", f"package {top!r} is not in the layer table: place it in LAYERS")]
    for name in sorted(imported):
        if name == DYNAMIC:
            found.append(Violation(module, name, "an import by computed name: name the module"))
            continue
        target = name.split(".")[0]
        if target in LAYER_OF and target != top and LAYER_OF[target] >= level:
            found.append(Violation(module, name, f"imports {target} (layer {LAYER_OF[target]}) from layer {level}"))
        if level != TOP_LAYER and top != "gate" and any(_within(name, p) for p in GATE_INTERIOR):
            found.append(Violation(module, name, "only the gate (and tests/benchmarks) import its interior"))
        if top in WITHOUT_DJANGO and any(_within(name, d) for d in DJANGO):
            found.append(Violation(module, name, f"{top} imports no Django"))
        if (
            top == "cio_kernel"
            and target not in LAYER_OF
            and target not in sys.stdlib_module_names
            and target not in KERNEL_THIRD_PARTY
        ):
            found.append(Violation(module, name, "the kernel's third-party imports are KERNEL_THIRD_PARTY only"))
    return found


def project_modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Module name → (file, whether it is a package's `__init__`), for every top-level package under `root`."""
    modules = {}
    for init in sorted(root.glob("*/__init__.py")):
        for path in init.parent.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def check_tree(root: Path = ROOT) -> list[Violation]:
    return [
        v
        for name, (path, is_package) in project_modules(root).items()
        for v in violations(name, imports_of(path.read_text(), name, is_package))
    ]


def test_every_top_level_package_is_in_the_layer_table() -> None:
    tops = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert tops == set(LAYER_OF), "place new packages in LAYERS; remove packages that are gone"


def test_the_project_keeps_the_floor_plan() -> None:
    modules = project_modules()
    assert {"cio_kernel.subjects", "gate.runtime.service", "policies.services", "bench.gate_latency"} <= modules.keys()
    found = check_tree()
    upward = {(v.module, v.imported.split(".")[0]) for v in found if v.rule.startswith("imports ")}
    others = [v for v in found if not v.rule.startswith("imports ")]
    assert others == []
    assert upward - KNOWN_UPWARD == set(), "a new import runs up the layer table"
    assert KNOWN_UPWARD - upward == set(), "fixed: remove it from KNOWN_UPWARD"


SYNTHETIC_TREE = {
    "cio_kernel/__init__.py": "from . import contracts\n",  # resolved inside cio_kernel: fine
    "cio_kernel/contracts.py": "import pydantic\nimport httpx\n",
    "cio_kernel/lazy.py": "def f():\n    from audit import models\n",
    "gate/__init__.py": "",
    "gate/runtime/__init__.py": "from .. import config\n",  # gate.config: within the gate, fine
    "gate/config.py": "import importlib\nx = importlib.import_module('django.conf')\n",
    "canary/__init__.py": "",
    "canary/watch.py": "from gate import runtime\nfrom bridges import engine_state\n",
    "bridges/__init__.py": "",
    "bridges/dyn.py": "name = 'policies'\n__import__(name)\n",
    "audit/__init__.py": "",
    "audit/admin.py": "from policies.admin import RecordAdmin\n",
    "policies/__init__.py": "",
    "policies/views.py": "from audit import selectors\nfrom gate.decision import evaluate\n",
    "cio_site/__init__.py": "",
    "cio_site/asgi.py": "from policies import views\nfrom gate.client import GateClient\n",
    "deploy/__init__.py": "",
    "bench/__init__.py": "",
    "bench/cost.py": "from gate.runtime.pipeline import DecisionPipeline\nfrom deploy import servers\n",
    "tests/__init__.py": "",
    "newpkg/__init__.py": "",
}


def test_a_synthetic_tree_with_every_kind_of_violation_is_caught(tmp_path: Path) -> None:
    for relative, source in SYNTHETIC_TREE.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    found = {(v.module, v.imported, v.rule.split(" (")[0].split(":")[0]) for v in check_tree(tmp_path)}
    assert found == {
        ("cio_kernel.contracts", "httpx", "the kernel's third-party imports are KERNEL_THIRD_PARTY only"),
        ("cio_kernel.lazy", "audit", "imports audit"),
        ("cio_kernel.lazy", "audit.models", "imports audit"),
        ("gate.config", "django.conf", "gate imports no Django"),
        ("canary.watch", "gate", "imports gate"),
        ("canary.watch", "gate.runtime", "imports gate"),
        ("canary.watch", "gate.runtime", "only the gate"),
        ("canary.watch", "bridges", "imports bridges"),
        ("canary.watch", "bridges.engine_state", "imports bridges"),
        ("bridges.dyn", "<dynamic>", "an import by computed name"),
        ("audit.admin", "policies.admin", "imports policies"),
        ("audit.admin", "policies.admin.RecordAdmin", "imports policies"),
        ("policies.views", "gate.decision", "only the gate"),
        ("policies.views", "gate.decision.evaluate", "only the gate"),
        ("newpkg", "", "package 'newpkg' is not in the layer table"),
    }


@pytest.mark.parametrize(
    ("module", "source", "is_package", "expected"),
    [
        ("gate.runtime.service", "from ..decision import evaluate", False, {"gate.decision", "gate.decision.evaluate"}),
        ("gate.runtime.service", "from . import wire", False, {"gate.runtime", "gate.runtime.wire"}),
        ("gate.runtime", "from . import wire", True, {"gate.runtime", "gate.runtime.wire"}),
        ("gate.runtime", "from .. import config", True, {"gate", "gate.config"}),
        ("gate", "from .runtime import service", True, {"gate.runtime", "gate.runtime.service"}),
        ("x.y", "import importlib\nimportlib.import_module('gate.runtime')", False, {"importlib", "gate.runtime"}),
    ],
)
def test_what_counts_as_an_import(module: str, source: str, is_package: bool, expected: set[str]) -> None:
    assert imports_of(source, module, is_package) == expected
