"""`python -m gate` / `cio-gate`: run one gate process until SIGTERM or SIGINT."""

import asyncio

from gate.config import GateSettings
from gate.runtime.log_setup import configure_logging
from gate.runtime.service import Gate


def main() -> None:
    settings = GateSettings()
    configure_logging(settings.log_level, f"gate[{settings.gate_id}]")
    asyncio.run(Gate(settings).run_until_stopped())


if __name__ == "__main__":
    main()
