"""A workload of the image started the way the image starts it, with no container runtime: in a private mount
namespace (tests/deploy/sandbox_init.py builds it), as the image's uid/gid, in /app, on a read-only root with only
the workload's declared paths (deploy/workloads.py) writable, with the image's environment (the Dockerfile's
ENV). The network is the host's, so the test's own NATS, Redis and ports are reachable on 127.0.0.1."""

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deploy.workloads import APP_DIR, IMAGE_UID, Workload
from tests.deploy.dockerfile import ROOT, runtime_stage
from tests.deploy.sandbox_init import SPEC_VARIABLE

INIT = Path(__file__).with_name("sandbox_init.py")
# The base image's PATH, which the Dockerfile's `PATH=/opt/venv/bin:$PATH` extends.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_VENV = "/opt/venv"
SYSTEM = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
DEVICES = ("null", "zero", "full", "random", "urandom")


@functools.cache
def unavailable() -> str | None:
    """Why a sandbox cannot be had here, or None."""
    if os.geteuid() != 0:
        return "needs root: mount namespaces, bind mounts and dropping to the image's uid (run the suite as root)"
    missing = [tool for tool in ("unshare", "mount") if shutil.which(tool) is None]
    if missing:
        return f"needs {' and '.join(missing)} (util-linux) on PATH"
    # Root in a container without CAP_SYS_ADMIN (docker's default) cannot have a mount namespace.
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"no private mount namespace here (`unshare --mount` failed: {probe.stderr.strip()})"
    return None


def image_env() -> dict[str, str]:
    """The Dockerfile's runtime environment, its venv being this test's (bound read-only at the same path)."""
    env = {"LANG": "C.UTF-8"}  # set by the python base image
    for key, value in runtime_stage().env().items():
        env[key] = value.replace("$PATH", BASE_PATH).replace(IMAGE_VENV, sys.prefix)
    return env


def own_folder(path: Path) -> Path:
    """A host folder the image's user owns alone, as a volume is mounted for it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, IMAGE_UID, IMAGE_UID)
    path.chmod(0o700)
    return path


@dataclass
class Sandbox:
    folder: Path  # holds its root's mount point and its volumes' host folders
    writable: dict[str, Path]  # path inside → host folder
    readonly: dict[str, Path] = field(default_factory=dict)  # e.g. a Secret's files

    @classmethod
    def of(
        cls,
        workload: Workload,
        folder: Path,
        also_writable: dict[str, Path] | None = None,
        readonly: dict[str, Path] | None = None,
    ) -> "Sandbox":
        """A fresh, empty host folder behind each path the workload declares writable; `also_writable` (path inside
        → host folder) for one inside a declared path (a database folder under /tmp), `readonly` for a Secret."""
        writable = {
            inside: own_folder(folder / "volumes" / inside.strip("/").replace("/", "_")) for inside in workload.writable
        }
        for inside in also_writable or {}:
            if not any(Path(inside).is_relative_to(declared) for declared in workload.writable):
                raise ValueError(f"{inside} is not inside a path {workload.name} declares writable")
        return cls(folder, {**writable, **(also_writable or {})}, dict(readonly or {}))

    def spec(self, argv: list[str], env: dict[str, str]) -> dict[str, object]:
        symlinks: list[tuple[str, str]] = []
        mounts: list[tuple[str, str, bool]] = [("/proc", "/proc", False)]
        for name in SYSTEM:
            path = Path("/", name)
            if path.is_symlink():  # merged /usr: /bin → usr/bin
                symlinks.append((f"/{name}", os.readlink(path)))
            elif path.is_dir():
                mounts.append((str(path), str(path), False))
        mounts += [(f"/dev/{name}", f"/dev/{name}", False) for name in DEVICES]  # a device stays usable read-only
        # The interpreter (when it is not under /usr) and the venv, read-only, where the venv expects them.
        for prefix in {sys.base_prefix, sys.prefix}:
            if not Path(prefix).is_relative_to("/usr"):
                mounts.append((prefix, prefix, False))
        mounts.append((str(ROOT), APP_DIR, False))
        mounts += [(str(host), inside, False) for inside, host in self.readonly.items()]
        mounts += [(str(host), inside, True) for inside, host in self.writable.items()]
        root = self.folder / "root"
        root.mkdir(parents=True, exist_ok=True)
        return {
            "root": str(root),
            "symlinks": symlinks,
            "mounts": mounts,
            "cwd": APP_DIR,
            "uid": IMAGE_UID,
            "gid": IMAGE_UID,
            "argv": argv,
            "env": {**image_env(), **env},
        }

    def _command(self, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        init = ["unshare", "--mount", "--propagation", "private", sys.executable, "-I", "-B", str(INIT)]
        return init, {"PATH": BASE_PATH, SPEC_VARIABLE: json.dumps(self.spec(argv, env))}

    def start(self, argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
        """The workload's process (the init execs it: same pid, so signals reach it), logging to a file."""
        command, init_env = self._command(argv, env)
        with log_path.open("ab") as log:
            return subprocess.Popen(command, env=init_env, stdout=log, stderr=subprocess.STDOUT)

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        command, init_env = self._command(argv, env or {})
        return subprocess.run(command, env=init_env, capture_output=True, text=True, timeout=60, check=False)
