"""Replacing a small file so that a crash or a power cut leaves either the old content or the new, never a torn
one: the gate's version floor and the latches it holds live on its volume this way."""

import os
from pathlib import Path


def replace_durably(path: Path, data: bytes) -> None:
    """Write `data` to a temporary sibling (mode 0600), fsync it, rename it over `path`, fsync the folder."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)
