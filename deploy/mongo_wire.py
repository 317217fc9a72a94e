"""A MongoDB-wire server from pip (mongoeco), for the local stack and the tests: `python -m deploy.mongo_wire`.

It speaks the real wire protocol to pymongo, so the audit store's MongoDB backend is exercised exactly as against
MongoDB. Two things only a real deployment does differently are prepared here: vector search indexes cannot be
created over mongoeco's wire (`createSearchIndexes` is not served), so `--vector-index` creates them through its
native API in this process; and it is a single node, so no replica-set features are assumed.
"""

import argparse
import asyncio
import signal
import sys

from cio_kernel.log_format import configure_logging


async def serve(port: int, path: str | None, vector_indexes: list[str]) -> None:
    import mongoeco
    from mongoeco.engines.memory import MemoryEngine
    from mongoeco.engines.sqlite import SQLiteEngine
    from mongoeco.wire import AsyncMongoEcoProxyServer

    engine = SQLiteEngine(path) if path else MemoryEngine()
    client = mongoeco.AsyncMongoClient(engine)
    server = AsyncMongoEcoProxyServer(client=client, host="127.0.0.1", port=port)
    address = await server.start()
    if path:
        await engine.connect()  # the proxy connects the file engine lazily; the index set-up below needs it now
    for spec in vector_indexes:  # db.collection.field:dimensions:name
        target, dims, name = spec.rsplit(":", 2)
        db, collection, field = target.split(".", 2)
        model = mongoeco.SearchIndexModel(
            {"fields": [{"type": "vector", "path": field, "numDimensions": int(dims), "similarity": "cosine"}]},
            name=name,
            type="vectorSearch",
        )
        existing = [i.get("name") async for i in await client[db][collection].list_search_indexes()]
        if name not in existing:
            await client[db][collection].create_search_index(model)
    print(f"mongo-wire listening on {address.host}:{address.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", help="SQLite file to keep the data in (default: in memory)")
    parser.add_argument("--vector-index", action="append", default=[], help="db.collection.field:dimensions:name")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.path, args.vector_index))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    configure_logging("mongo-wire")  # a timestamp on every line, text or JSON (docs/logging.md)
    main()
