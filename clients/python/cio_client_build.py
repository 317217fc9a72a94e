"""The build backend of `petrosa-cio-client` (PEP 517): a wheel of `cio_client` and the kernel's contracts.

The modules live at the repository root with the rest of the project, so the distribution cannot name a package
directory of its own. It ships exactly the modules of `ROOTS` and whatever they import of the project at run time,
found by reading their imports (an `if TYPE_CHECKING:` block is not run, so it is not followed): a module added to
the contracts ships without editing a list, and one that reaches outside `cio_client`/`cio_kernel` fails the build
rather than shipping a client that cannot import. The third-party side is checked where it is written
(tests/unit/test_import_rules.py, `CLIENT_THIRD_PARTY`) and for real by installing the wheel into a clean
environment (tests/e2e/test_client_distribution.py).

Only the standard library is used, so the build needs nothing fetched: `pip wheel --no-deps --no-build-isolation
clients/python` works offline (`make client`). An sdist carries the collected modules next to this file and builds
the same wheel from there.
"""

import ast
import base64
import hashlib
import io
import tarfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOTS = ("cio_client", "cio_kernel.contracts")  # every module of these packages, and their project imports
SHIPPED_PACKAGES = ("cio_client", "cio_kernel")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed times: the same sources make the same archive


class BuildError(Exception):
    """The modules to ship import something of the project the distribution cannot carry."""


def source_root() -> Path:
    """In the repository the modules are two levels up; in an unpacked sdist they sit next to this file."""
    return HERE if (HERE / "cio_client").is_dir() else HERE.parents[1]


def project() -> dict:
    return tomllib.loads((HERE / "pyproject.toml").read_text())["project"]


def _dist_name(meta: dict) -> str:
    return f"{meta['name'].replace('-', '_')}-{meta['version']}"


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str, package: str) -> set[str]:
    """Every absolute name `source` may import when run (`package`: the package it is in, for relative imports)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
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
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def shipped_files(root: Path | None = None) -> list[str]:
    """The distribution's files (paths relative to `root`): the closure of `ROOTS` over the project's imports."""
    root = root or source_root()
    project_packages = {init.parent.name for init in root.glob("*/__init__.py")}
    todo = [
        ".".join(path.relative_to(root).with_suffix("").parts)
        for name in ROOTS
        for path in sorted(root.joinpath(*name.split(".")).rglob("*.py"))
    ]
    files: set[Path] = set()
    while todo:
        name = todo.pop().removesuffix(".__init__")
        path = _module_file(root, name)
        if path is None or path in files:
            continue
        files.add(path)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # the packages it sits in
        package = name if path.name == "__init__.py" else ".".join(parts[:-1])
        for imported in runtime_imports(path.read_text(), package):
            top = imported.split(".")[0]
            if top not in project_packages:
                continue  # the standard library or a dependency
            if top not in SHIPPED_PACKAGES:
                raise BuildError(f"{name} imports {imported}: the client distribution ships {SHIPPED_PACKAGES} only")
            bits = imported.split(".")
            todo.extend(m for i in range(len(bits), 0, -1) if _module_file(root, m := ".".join(bits[:i])))
    return sorted(path.relative_to(root).as_posix() for path in files)


def metadata(meta: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {meta['name']}",
        f"Version: {meta['version']}",
        f"Summary: {meta['description']}",
        f"Requires-Python: {meta['requires-python']}",
        *(f"Requires-Dist: {requirement}" for requirement in meta["dependencies"]),
    ]
    return "\n".join(lines) + "\n"


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> str:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


# -- PEP 517 hooks -----------------------------------------------------------------------------------------------------
def get_requires_for_build_wheel(config_settings: dict | None = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: dict | None = None) -> list[str]:
    return []


def build_wheel(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    meta, root = project(), source_root()
    dist_info = f"{_dist_name(meta)}.dist-info"
    wheel_file = f"{_dist_name(meta)}-py3-none-any.whl"
    generated = {
        f"{dist_info}/METADATA": metadata(meta),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: cio_client_build\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    Path(wheel_directory).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(Path(wheel_directory) / wheel_file, "w") as archive:
        record = [_zip_entry(archive, name, (root / name).read_bytes()) for name in shipped_files(root)]
        record += [_zip_entry(archive, name, text.encode()) for name, text in generated.items()]
        record.append(f"{dist_info}/RECORD,,")
        _zip_entry(archive, f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode())
    return wheel_file


def build_sdist(sdist_directory: str, config_settings: dict | None = None) -> str:
    meta, root = project(), source_root()
    top = _dist_name(meta)
    members = {"PKG-INFO": metadata(meta).encode()}
    members |= {name: (HERE / name).read_bytes() for name in ("pyproject.toml", "cio_client_build.py")}
    members |= {name: (root / name).read_bytes() for name in shipped_files(root)}
    Path(sdist_directory).mkdir(parents=True, exist_ok=True)
    with tarfile.open(Path(sdist_directory) / f"{top}.tar.gz", "w:gz") as archive:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o644, 315532800  # 1980-01-01, as in the wheel
            archive.addfile(info, io.BytesIO(data))
    return f"{top}.tar.gz"
