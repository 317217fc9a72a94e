"""`make image`: build deploy/image/Dockerfile with the first container tool that works here — docker (its daemon
answering), podman, then buildah — tagged `petrosa-cio:v<version>-r<run>-<sha>`, the fleet's scheme. When none
works it says which it tried and why, and fails: an image is never reported built when it was not."""

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from cio_kernel.numbers import whole_number

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "image" / "Dockerfile"
IMAGE_NAME = "petrosa-cio"
PROBE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Tool:
    name: str
    probe: tuple[str, ...]  # succeeds only when the tool can build now (docker: the daemon answers)
    build: tuple[str, ...]  # followed by the tag, build arguments and the context


TOOLS = (
    Tool("docker", ("docker", "info"), ("docker", "build")),
    Tool("podman", ("podman", "info"), ("podman", "build")),
    Tool("buildah", ("buildah", "info"), ("buildah", "build")),
)


def version(root: Path = ROOT) -> str:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def run_number(env: dict[str, str]) -> str:
    """The CI run (GitHub's `GITHUB_RUN_NUMBER`, else `RUN_NUMBER`); 0 for a build outside CI."""
    number = env.get("GITHUB_RUN_NUMBER") or env.get("RUN_NUMBER") or "0"
    if whole_number(number) is None:  # "²" passes `isdigit` and would have landed in the image's tag
        raise ValueError(f"the run number must be digits, not {number!r}")
    return number


def short_sha(root: Path = ROOT) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short=7", "HEAD"],  # noqa: S607 - git from PATH, as `make` finds it
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"no git revision to tag the image with: {done.stderr.strip()}")
    return done.stdout.strip()


def image_tag(version_: str, run: str, sha: str) -> str:
    return f"{IMAGE_NAME}:v{version_}-r{run}-{sha}"


def working_tool(tools: tuple[Tool, ...] = TOOLS) -> tuple[Tool | None, list[str]]:
    """The first tool that is installed and can build now, and why each one before it could not."""
    tried: list[str] = []
    for tool in tools:
        path = shutil.which(tool.probe[0])
        if path is None:
            tried.append(f"{tool.name}: not installed (not on PATH)")
            continue
        try:
            probe = subprocess.run(  # noqa: S603 - argv from TOOLS
                tool.probe, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            tried.append(
                f"{tool.name}: {path} found, but `{' '.join(tool.probe)}` did not answer in {PROBE_TIMEOUT_S}s"
            )
            continue
        if probe.returncode == 0:
            return tool, tried
        lines = (probe.stderr or probe.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {probe.returncode}"
        tried.append(f"{tool.name}: {path} found, but `{' '.join(tool.probe)}` failed: {reason}")
    return None, tried


def build_command(tool: Tool, tag: str, version_: str, sha: str, root: Path = ROOT) -> list[str]:
    return [
        *tool.build,
        "--file",
        str(DOCKERFILE),
        "--tag",
        tag,
        "--build-arg",
        f"VERSION={version_}",
        "--build-arg",
        f"REVISION={sha}",
        str(root),
    ]


def main() -> int:
    tool, tried = working_tool()
    if tool is None:
        print("make image: no working container tool; tried, in order:", file=sys.stderr)
        for line in tried:
            print(f"  {line}", file=sys.stderr)
        print(
            "Install docker (with its daemon running), podman or buildah, then run `make image` again.", file=sys.stderr
        )
        return 2
    for line in tried:
        print(f"make image: skipped {line}")
    version_, sha = version(), short_sha()
    tag = image_tag(version_, run_number(dict(os.environ)), sha)
    command = build_command(tool, tag, version_, sha)
    print(f"make image: building {tag} with {tool.name}: {' '.join(command)}", flush=True)
    done = subprocess.run(command, cwd=ROOT, check=False)  # noqa: S603 - argv from TOOLS and our own values
    if done.returncode != 0:
        print(f"make image: {tool.name} failed (exit status {done.returncode}); no image was built", file=sys.stderr)
        return done.returncode
    print(f"make image: built {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
