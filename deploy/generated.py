"""Files rendered from a table and committed (the NATS and Redis configuration, the NATS cluster's, the Kubernetes
manifests): each generator writes them, or with `--check` says which are out of date and exits 1."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_or_check(files: dict[Path, str], command: str, check: bool, leftovers: tuple[Path, ...] = ()) -> None:
    """Write `files` (and delete `leftovers`: files the generator no longer makes), or with `check` exit 1 when
    any differs or is left over, naming `command` to run."""
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if check:
        for path in [*stale, *leftovers]:
            print(f"{path.relative_to(ROOT)} is out of date: run `{command}`")
        sys.exit(1 if stale or leftovers else 0)
    for path in leftovers:
        path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
