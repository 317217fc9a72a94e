"""The floor plan, enforced by walking every module's imports: one ordered layer table (docs/architecture.md).

A module may import its own top-level package and the packages of lower layers, never a package of its own layer
or a higher one. Every top-level package of the project is in the table (the benchmark, the deploy tooling and the
tests included), so a new package must be placed before anything may import it. Besides the order:

- the kernel imports no Django and, of third-party code, only `KERNEL_THIRD_PARTY`: every side stands on it;
- the fleet client (`cio_client`) imports, of third-party code, only `CLIENT_THIRD_PARTY`: its distribution
  (clients/python) depends on nothing else;
- outside `gate`, only the top layer (tests, benchmarks: they exercise it on purpose) imports the gate's interior
  (`gate.runtime`, `gate.decision`); what others need from the gate belongs in the kernel or `cio_client`;
- the gate, the canary and the bridges import no Django: they start and work with Django absent;
- no module imports itself round a circle (imports inside functions included).

What counts as an import: `import x`, `from x import y` (both `x` and `x.y`: `from gate import runtime` imports the
interior), relative imports (resolved from the package a module is in; an `__init__.py` is its own package),
imports inside functions, and `importlib.import_module` / `__import__` with a literal name; a dynamic name is
itself a violation (name what you import).

`KNOWN_UPWARD` lists imports that run up the table and are tolerated until moved; it is empty, and the test fails
when one appears (fix the import or, knowingly, list it) and when one listed is gone, so the list only shrinks.
"""

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories import write_tree

ROOT = Path(__file__).resolve().parents[2]

# Lowest first. Packages in one row stand side by side: none imports another.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cio_kernel",),
    ("cio_client",),
    ("gate", "canary", "bridges"),
    ("core", "brakes"),
    ("audit",),
    ("alerting", "policies"),
    ("lineage", "outages", "strategist", "tradeconfig"),
    ("cockpit",),
    ("cio_site",),
    ("deploy",),
    ("bench", "tests"),
)
LAYER_OF = {package: level for level, row in enumerate(LAYERS) for package in row}
TOP_LAYER = len(LAYERS) - 1
GATE_INTERIOR = ("gate.runtime", "gate.decision")
WITHOUT_DJANGO = ("cio_kernel", "cio_client", "gate", "canary", "bridges")
DJANGO = ("django", "rest_framework")
KERNEL_THIRD_PARTY = frozenset({"pydantic", "orjson", "cryptography", "nats", "redis", "opentelemetry"})
CLIENT_THIRD_PARTY = frozenset({"pydantic", "orjson", "nats"})  # clients/python/pyproject.toml's dependencies
THIRD_PARTY_ONLY = {"cio_kernel": KERNEL_THIRD_PARTY, "cio_client": CLIENT_THIRD_PARTY}

# (module, package it imports from a higher layer or its own): what the floor plan still has to fix.
KNOWN_UPWARD: frozenset[tuple[str, str]] = frozenset()


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
        allowed = THIRD_PARTY_ONLY.get(top)
        if allowed is not None and target not in LAYER_OF.keys() | allowed | sys.stdlib_module_names:
            found.append(Violation(module, name, f"{top} imports third-party {target} (only {sorted(allowed)})"))
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


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the project modules it imports (a name resolves to the longest module it starts with)."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets = set()
        for imported in imports_of(path.read_text(), name, is_package):
            parts = imported.split(".")
            found = next((m for i in range(len(parts), 0, -1) if (m := ".".join(parts[:i])) in modules), None)
            if found is not None and found != name:
                targets.add(found)
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while (member := stack.pop()) != module:
                group.append(member)
            if group:
                found.append(sorted([*group, module]))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


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


def test_no_module_imports_itself_round_a_circle() -> None:
    # Imports inside functions count: a lazy import that dodges a circle at start-up still ties the modules.
    assert circles(import_graph()) == []


def test_a_circle_is_found_however_it_is_spelled(tmp_path: Path) -> None:
    tree = {
        "audit/__init__.py": "",
        "audit/dispatch.py": "from audit import tasks\n",
        "audit/tasks.py": "def f():\n    from .escalation import due\n",
        "audit/escalation.py": "import importlib\nimportlib.import_module('audit.dispatch')\n",
        "audit/records.py": "from audit import dispatch\n",  # imports into the circle, is not in it
    }
    write_tree(tmp_path, tree)
    assert circles(import_graph(tmp_path)) == [["audit.dispatch", "audit.escalation", "audit.tasks"]]


SYNTHETIC_TREE = {
    "cio_kernel/__init__.py": "from . import contracts\n",  # resolved inside cio_kernel: fine
    "cio_kernel/contracts.py": "import pydantic\nimport httpx\n",
    "cio_client/__init__.py": "import redis\nfrom cio_kernel.contracts import intent\n",
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
    write_tree(tmp_path, SYNTHETIC_TREE)
    found = {(v.module, v.imported, v.rule.split(" (")[0].split(":")[0]) for v in check_tree(tmp_path)}
    assert found == {
        ("cio_kernel.contracts", "httpx", "cio_kernel imports third-party httpx"),
        ("cio_client", "redis", "cio_client imports third-party redis"),
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
