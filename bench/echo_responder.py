"""The baseline: a trivial responder that echoes every request on `bench.echo`, in its own process."""

import asyncio
import signal
import sys

import nats
from nats.aio.msg import Msg


async def main(url: str) -> None:
    nc = await nats.connect(url)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def echo(msg: Msg) -> None:
        await nc.publish(msg.reply, msg.data)

    await nc.subscribe("bench.echo", cb=echo, pending_msgs_limit=200_000, pending_bytes_limit=256 * 1024 * 1024)
    await nc.flush()
    print("echo responder ready", flush=True)
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
