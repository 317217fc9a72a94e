"""`python -m bridges.engine_state`: poll the trade engine's state API, publish `cio.portfolio.snapshot`."""

import asyncio
import logging
import sys

from pydantic import ValidationError

from bridges.engine_state.config import BridgeSettings
from bridges.engine_state.service import SnapshotBridge
from cio_kernel.log_format import configure_logging


def main() -> None:
    configure_logging("snapshot-bridge")  # first: a bad setting's message is a log line too
    try:
        settings = BridgeSettings()
    except ValidationError as exc:
        print(f"snapshot bridge: bad configuration: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger().setLevel(settings.log_level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the bridge's own
    asyncio.run(SnapshotBridge(settings).run_until_stopped())


if __name__ == "__main__":
    main()
