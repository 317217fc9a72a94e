"""`python -m gate` / `cio-gate`: run one gate process until SIGTERM or SIGINT."""

import asyncio
from collections.abc import Callable

from cio_kernel.log_format import configure_logging
from gate.config import GateSettings
from gate.runtime.service import Gate


def main() -> None:
    configure_logging("gate")  # first: a bad setting's error is a log line too
    settings = GateSettings()
    configure_logging(f"gate[{settings.gate_id}]", settings.log_level)
    asyncio.run(Gate(settings).run_until_stopped(), loop_factory=loop_factory(settings.event_loop))


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


if __name__ == "__main__":
    main()
