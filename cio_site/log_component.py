"""Which control-plane process is writing: the `component` of its log lines (docs/logging.md).

The control plane's processes share one settings module, so the name comes from the command that started the
process: a management command's name (`audit_ingest`), Celery's `worker` or `beat`, `web` for uvicorn;
`CIO_LOG_COMPONENT` overrides it."""

import os
import sys
from pathlib import Path

from cio_kernel.log_format import stamp_streams

DEFAULT = "control-plane"  # anything else that loads the settings (a test run, a shell)


def process_name(argv: list[str]) -> str | None:
    """The component when `argv` starts one of the control plane's processes; None for anything else."""
    if not argv:
        return None
    program = Path(argv[0])
    words = [word for word in argv[1:] if not word.startswith("-")]
    if program.name == "manage.py":
        return words[0] if words else "manage"
    if "celery" in (program.name, program.parent.name):
        return next((word for word in words if word in ("worker", "beat")), None)
    if "uvicorn" in (program.name, program.parent.name):
        return "web"
    return None


def component(argv: list[str] | None = None) -> str:
    return os.environ.get("CIO_LOG_COMPONENT") or process_name(sys.argv if argv is None else argv) or DEFAULT


def stamp_entry_point() -> None:
    """In a process started as one of the control plane's commands, every printed line stamped too (Celery's
    banner, a command's output); imported elsewhere (a test run), the streams are left alone."""
    if process_name(sys.argv) is not None:
        stamp_streams(component())
