"""Small secret files in the data directory: created once, atomically, readable by the owner only."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def load_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of ``path``; when it does not exist, ``make()`` is written there with mode 0600 (if several
    processes race, the first one's file wins and everyone returns it)."""
    if path.exists():
        return path.read_bytes()
    data = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data
