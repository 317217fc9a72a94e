"""checkov (offline, `--skip-download`) over the rendered manifests: every check passes, or is skipped in the
manifest with its reason. checkov pins heavy dependencies of its own, so it lives in a separate tools venv,
`.venv-tools`, which `make test` creates; without it this test fails and says how to make it."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"
MANIFESTS = ROOT / "deploy" / "k8s"


def test_checkov_passes_every_check_or_skips_it_with_a_reason(tmp_path):
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov is not installed in {CHECKOV.parent.parent}: run `make tools` (or `python -m venv .venv-tools "
            "&& .venv-tools/bin/pip install 'checkov>=3.2,<4'`); `make test` does it before the tests"
        )
    # Only the Kubernetes framework, only the rendered files: the rest of the repository is not checkov's business.
    result = subprocess.run(
        [str(CHECKOV), "--skip-download", "--framework", "kubernetes", "-d", str(MANIFESTS), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LOG_LEVEL": "ERROR"},
        check=False,
    )
    report = json.loads(result.stdout)
    report = report if isinstance(report, dict) else next(r for r in report if r["check_type"] == "kubernetes")
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]]
    assert failed == [], "checkov failed:\n" + "\n".join(failed)
    objects = [d for p in MANIFESTS.glob("*/resources/*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    assert report["summary"]["resource_count"] >= len(objects) - 1  # checkov counts a kind-less list as none
    assert report["summary"]["passed"] > 20 * len(objects)
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, f"{skipped['check_id']} skipped without a reason"
