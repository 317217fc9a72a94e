"""`make image` (deploy/image/build.py): the fleet's tag scheme, the first working tool in order, and a clear
failure when none works. Probed with real commands (`true`, `false`, a name on no PATH); no image is built here."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from deploy.image.build import DOCKERFILE, ROOT, Tool, build_command, image_tag, run_number, short_sha, version
from deploy.image.build import working_tool as first_working


def test_the_tag_follows_the_fleet_scheme():
    tag = image_tag(version(), run_number({"GITHUB_RUN_NUMBER": "42"}), short_sha())
    assert re.fullmatch(r"petrosa-cio:v\d+\.\d+\.\d+-r42-[0-9a-f]{7,}", tag), tag


def test_the_run_number_comes_from_ci_or_is_zero():
    assert run_number({"GITHUB_RUN_NUMBER": "7", "RUN_NUMBER": "9"}) == "7"
    assert run_number({"RUN_NUMBER": "9"}) == "9"
    assert run_number({}) == "0"
    for bad in ("7; rm -rf /", "²", "٧"):  # Unicode digits pass `isdigit()`, and "²" landed in the tag as it was
        with pytest.raises(ValueError, match="digits"):
            run_number({"RUN_NUMBER": bad})


def test_the_first_tool_that_works_is_chosen_and_the_others_say_why_not():
    absent = Tool("absent", ("cio-no-such-container-tool",), ("cio-no-such-container-tool", "build"))
    broken = Tool("broken", ("false",), ("false",))
    working = Tool("working", ("true",), ("true", "build"))
    later = Tool("later", ("true",), ("true",))
    tool, tried = first_working((absent, broken, working, later))
    assert tool == working
    assert tried == [
        "absent: not installed (not on PATH)",
        f"broken: {shutil.which('false')} found, but `false` failed: exit status 1",
    ]
    assert first_working((absent, broken))[0] is None


def test_the_build_command_names_the_dockerfile_the_tag_and_the_repository_as_context():
    command = build_command(Tool("docker", ("docker", "info"), ("docker", "build")), "t:1", "0.1.0", "abc1234")
    assert command[:2] == ["docker", "build"] and command[-1] == str(ROOT)
    assert command[command.index("--file") + 1] == str(DOCKERFILE)
    assert command[command.index("--tag") + 1] == "t:1"
    assert {"VERSION=0.1.0", "REVISION=abc1234"} <= set(command)


def test_make_image_says_so_and_fails_when_no_tool_is_present(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # an empty folder: no docker, podman or buildah
    done = subprocess.run(
        [sys.executable, "-B", "-m", "deploy.image.build"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    for name in ("docker", "podman", "buildah"):
        assert f"{name}: not installed (not on PATH)" in done.stderr
    assert "no working container tool" in done.stderr and "built" not in done.stdout
