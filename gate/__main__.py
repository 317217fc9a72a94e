"""`python -m gate` / `cio-gate`: run one gate process until SIGTERM or SIGINT."""

import asyncio

from cio_kernel.log_format import configure_logging
from gate.config import GateSettings
from gate.runtime.service import Gate


def main() -> None:
    configure_logging("gate")  # first: a bad setting's error is a log line too
    settings = GateSettings()
    configure_logging(f"gate[{settings.gate_id}]", settings.log_level)
    asyncio.run(Gate(settings).run_until_stopped())


if __name__ == "__main__":
    main()
