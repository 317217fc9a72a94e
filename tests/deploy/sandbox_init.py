"""Runs as root inside a private mount namespace (`unshare --mount`, tests/deploy/sandbox.py starts it), builds the
image's filesystem there and becomes the workload: a tmpfs root holding read-only binds of the system folders,
the interpreter, the venv and the source at /app, a minimal /dev, and the workload's declared paths — the only
writable ones — bound from host folders; the root is then made read-only, and the process chroots, drops to the
image's uid/gid with no groups, no capabilities and no new privileges, and execs the workload's command.

Standard library only and run with `python -I -B`: nothing from the source tree is imported and no bytecode is
written. Every mount disappears with the namespace; nothing on the host changes."""

import ctypes
import json
import os
import subprocess
from pathlib import Path

PR_SET_NO_NEW_PRIVS = 38
SPEC_VARIABLE = "CIO_SANDBOX_SPEC"


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def target(root: Path, inside: str) -> Path:
    return root / inside.lstrip("/")


def main(spec: dict) -> None:
    root = Path(spec["root"])
    mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "cio-image-root", str(root))
    for link, points_to in spec["symlinks"]:
        target(root, link).parent.mkdir(parents=True, exist_ok=True)
        target(root, link).symlink_to(points_to)
    # Parents before children: a writable folder may sit inside another (/tmp/db inside /tmp).
    for host, inside, writable in sorted(spec["mounts"], key=lambda m: m[1].count("/")):
        place = target(root, inside)
        if Path(host).is_dir():
            place.mkdir(parents=True, exist_ok=True)
        else:  # a device node is bound onto an empty file
            place.parent.mkdir(parents=True, exist_ok=True)
            place.touch()
        mount("--rbind", host, str(place))
        if not writable:
            mount("-o", "remount,bind,ro", str(place))
    mount("-o", "remount,ro", str(root))  # the image's root filesystem: nothing undeclared is writable

    os.chroot(root)
    os.chdir(spec["cwd"])
    os.setgroups([])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])  # drops every capability (no ambient ones are set)
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    os.execvpe(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    # The spec comes in the environment, not on the command line: it holds the workload's environment (a
    # SECRET_KEY), and a command line is readable by every user; this process's environment is not.
    main(json.loads(os.environ.pop(SPEC_VARIABLE)))
