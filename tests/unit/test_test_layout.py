"""One home for what tests share: fixtures in tests/plugins (registered in tests/conftest.py's `pytest_plugins`) or
in a folder's conftest.py, helpers in helper modules. No module under tests/ or bench/ imports a test module
(`test_*.py`) or a conftest: importing a fixture from a test module runs that module's tests' setup in another
file's namespace, makes one test file break when another is edited, and needs `noqa` to keep the linter quiet.

What counts as an import, found with `ast`: `import x`, `from x import y` (both `x` and `x.y`: `from tests.a import
test_b` imports the test module), relative imports (resolved from the module's package), imports inside functions,
`importlib.import_module` / `__import__` with a literal name, and the names listed in `pytest_plugins`."""

import ast
from pathlib import Path

from tests.factories import write_tree

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench")


def _dynamic_import(call: ast.Call) -> str | None:
    func = call.func
    named = (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or (
        isinstance(func, ast.Attribute) and func.attr == "import_module"
    )
    first = call.args[0] if call.args else None
    if named and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _plugins(node: ast.Assign) -> list[str]:
    if not any(isinstance(t, ast.Name) and t.id == "pytest_plugins" for t in node.targets):
        return []
    values = node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
    return [v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]


def imported(source: str, package: str) -> set[str]:
    """Every absolute module name `source`, a module of `package`, imports (see the module docstring)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            origin = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                origin = f"{base}.{origin}" if origin else base
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and (name := _dynamic_import(node)):
            names.add(name)
        elif isinstance(node, ast.Assign):
            names.update(_plugins(node))
    return names


def forbidden(name: str) -> bool:
    """A conftest anywhere, or a test module of the project's (third-party names such as `django.test` pass)."""
    parts = name.split(".")
    return "conftest" in parts or (parts[0] in SCANNED and any(p.startswith("test_") for p in parts[1:]))


def layout_violations(root: Path = ROOT) -> list[tuple[str, str]]:
    """(file, imported name) for every forbidden import in the modules under `root`'s tests/ and bench/."""
    found = []
    for top in SCANNED:
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            package = ".".join(parts if parts[-1] == "__init__" else parts[:-1])
            found += [
                (path.relative_to(root).as_posix(), name)
                for name in sorted(imported(path.read_text(), package))
                if forbidden(name)
            ]
    return found


def test_no_module_imports_a_test_module_or_a_conftest() -> None:
    assert len(list((ROOT / "tests").rglob("test_*.py"))) > 100  # the walk found the suite
    assert layout_violations() == [], "move what is shared into tests/plugins, a conftest or a helper module"


def test_a_synthetic_tree_with_every_kind_of_forbidden_import_is_caught(tmp_path: Path) -> None:
    files = {
        "tests/__init__.py": "",
        "tests/conftest.py": 'pytest_plugins = ["tests.plugins.ok", "tests.a.test_one"]\n',
        "tests/factories.py": "def make() -> None: ...\n",
        "tests/a/__init__.py": "",
        "tests/a/helpers.py": "from tests.factories import make\n",
        "tests/a/test_one.py": "import pytest\n\n@pytest.fixture\ndef shared() -> None: ...\n",
        "tests/a/test_two.py": "from tests.a.test_one import shared  # noqa: F401\n",
        "tests/a/test_three.py": "from . import test_one\nfrom .helpers import make\nfrom django.test import Client\n",
        "tests/b/__init__.py": "",
        "tests/b/test_four.py": "import tests.a.test_one\n\ndef test_x() -> None:\n    from tests import conftest\n",
        "tests/b/test_five.py": "import importlib\nimportlib.import_module('tests.a.test_two')\n",
        "bench/__init__.py": "",
        "bench/run.py": "from tests.conftest import nats_url\nfrom tests.a.helpers import make\n",
    }
    write_tree(tmp_path, files)
    assert layout_violations(tmp_path) == [
        ("tests/a/test_three.py", "tests.a.test_one"),  # relative
        ("tests/a/test_two.py", "tests.a.test_one"),  # a fixture from a test module
        ("tests/a/test_two.py", "tests.a.test_one.shared"),
        ("tests/b/test_five.py", "tests.a.test_two"),  # by literal name
        ("tests/b/test_four.py", "tests.a.test_one"),
        ("tests/b/test_four.py", "tests.conftest"),  # inside a function
        ("tests/conftest.py", "tests.a.test_one"),  # registered as a plugin
        ("bench/run.py", "tests.conftest"),
        ("bench/run.py", "tests.conftest.nats_url"),
    ]
