"""A real AIMDS server on loopback (uvicorn in a thread) with a real SQLite data directory."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from aimds import Guard
from aimds.server.app import create_app
from aimds.server.settings import ServiceSettings
from aimds.store.sqlite import SQLiteStore


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    """A running server and keys for each role."""

    url: str
    data_dir: Path
    keys: dict[str, str]
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, role: str | None = "admin", **kw: Any) -> httpx.Client:
        """An HTTP client authenticated with ``role``'s key (None: no credentials)."""
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def stop(self) -> None:
        """Graceful shutdown (final checkpoint)."""
        self.server.should_exit = True
        self.thread.join(30)


def start_server(data_dir: Path, guard: Guard, **settings: Any) -> Live:
    """Create keys, build the app and serve it on a free loopback port."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with SQLiteStore(data_dir) as store:
        keys = {role: store.create_key(role, f"test-{role}", actor="test")[1]
                for role in ("detector", "analyst", "admin")}
    svc_settings = ServiceSettings(data_dir=data_dir, access_log=False, **settings)
    app = create_app(svc_settings, guard=guard)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return Live(f"http://127.0.0.1:{port}", data_dir, keys, server, thread)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, guard: Guard) -> Iterator[Live]:
    """One shared server for the API tests (production settings, default detectors)."""
    server = start_server(tmp_path_factory.mktemp("aimds-live"), guard, key_cache_s=0.2, max_body_bytes=256 * 1024,
                          rate_limit_per_s=10_000, rate_limit_burst=10_000)
    yield server
    server.stop()
