"""Process-wide worker threads for native code that releases the GIL (RE2 matching).

Each named pool is created on first use and shared by every guard of the process. A forked child
(``gunicorn --preload``, ``multiprocessing`` with fork) does not inherit the parent's threads, so the
pools are forgotten after a fork and the child creates its own.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def pool(name: str, workers: int = 2) -> ThreadPoolExecutor:
    """The process's pool called ``name`` (threads named ``aimds-<name>``), created on first use."""
    with _LOCK:
        found = _POOLS.get(name)
        if found is None:
            found = _POOLS[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"aimds-{name}")
        return found


def _forget_after_fork() -> None:
    global _LOCK
    _POOLS.clear()  # the threads behind them exist only in the parent
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
