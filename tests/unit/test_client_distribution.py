"""The client distribution's build (clients/python): what it collects, what it refuses, what it depends on.

Installing the wheel for real and running a bot through it is tests/e2e/test_client_distribution.py."""

import importlib.util
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.factories import write_tree

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"


def _backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cio_client_build", CLIENT / "cio_client_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


backend = _backend()


def _name(requirement: str) -> str:
    return requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()


def test_its_dependencies_are_the_projects_own_ranges_and_no_more() -> None:
    ours = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    client = backend.project()
    assert client["name"] == "petrosa-cio-client" and client["version"]
    assert sorted(map(_name, client["dependencies"])) == ["nats-py", "orjson", "pydantic"]
    for requirement in client["dependencies"]:
        assert requirement in ours  # the same range: the client never needs a release the gate does not run


def test_the_wheel_holds_the_client_the_contracts_and_what_they_import_only(tmp_path: Path) -> None:
    shipped = backend.shipped_files()
    assert {"cio_client/__init__.py", "cio_client/client.py", "cio_kernel/__init__.py"} <= set(shipped)
    assert {f"cio_kernel/contracts/{p.name}" for p in (ROOT / "cio_kernel" / "contracts").glob("*.py")} <= set(shipped)
    assert "cio_kernel/policy/document.py" in shipped  # the heartbeat carries a policy seal
    assert "cio_kernel/policy/signing.py" not in shipped  # only a hint there: it would need cryptography
    assert {path.split("/")[0] for path in shipped} == {"cio_client", "cio_kernel"}

    wheel = tmp_path / backend.build_wheel(str(tmp_path))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read("petrosa_cio_client-1.0.0.dist-info/METADATA").decode()
        record = archive.read("petrosa_cio_client-1.0.0.dist-info/RECORD").decode()
    assert sorted(n for n in names if ".dist-info/" not in n) == shipped
    assert "Requires-Dist: nats-py>=2.16,<3" in metadata and "django" not in metadata.lower()
    assert all(f"{name},sha256=" in record for name in shipped)


def test_a_shipped_module_reaching_outside_the_client_and_kernel_fails_the_build(tmp_path: Path) -> None:
    tree = {
        "cio_client/__init__.py": "from cio_client import client\n",
        "cio_client/client.py": (
            "from typing import TYPE_CHECKING\nfrom cio_kernel.contracts.intent import X\n"
            "if TYPE_CHECKING:\n    from cio_kernel.policy.signing import Signer\n"
        ),
        "cio_kernel/__init__.py": "",
        "cio_kernel/contracts/__init__.py": "",
        "cio_kernel/contracts/intent.py": "from ..policy import spec\n",
        "cio_kernel/policy/__init__.py": "",
        "cio_kernel/policy/spec.py": "import pydantic\n",
        "cio_kernel/policy/signing.py": "import cryptography\n",
        "gate/__init__.py": "",
        "gate/config.py": "",
    }
    write_tree(tmp_path, tree)
    assert backend.shipped_files(tmp_path) == [
        "cio_client/__init__.py",
        "cio_client/client.py",
        "cio_kernel/__init__.py",
        "cio_kernel/contracts/__init__.py",
        "cio_kernel/contracts/intent.py",
        "cio_kernel/policy/__init__.py",
        "cio_kernel/policy/spec.py",  # found through a relative import; signing only under TYPE_CHECKING
    ]
    write_tree(tmp_path, {"cio_kernel/contracts/intent.py": "def f():\n    from gate.config import GateSettings\n"})
    with pytest.raises(backend.BuildError, match=r"imports gate\.config"):
        backend.shipped_files(tmp_path)


def test_the_old_import_path_is_the_same_client() -> None:
    import cio_client
    from gate import client

    assert client.GateClient is cio_client.GateClient
    assert client.ConservativeModeError is cio_client.ConservativeModeError
    assert client.GateUnavailableError is cio_client.GateUnavailableError
