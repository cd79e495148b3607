"""Process helpers shared by the load and durability benchmarks: free ports, API keys, and an ``aimds serve``
(or any server) child in its own process group that can be stopped gracefully or killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aimds_cli() -> list[str]:
    """The command that runs the ``aimds`` CLI of this interpreter's environment."""
    script = Path(sys.executable).parent / "aimds"
    if script.exists():
        return [str(script)]
    found = shutil.which("aimds")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from aimds.cli import main; sys.exit(main())"]


def create_key(data_dir: Path, role: str, env: Mapping[str, str] | None = None) -> str:
    """Create an API key with ``aimds keys create --json`` and return its secret."""
    out = subprocess.run([*aimds_cli(), "keys", "create", "--role", role, "--data-dir", str(data_dir), "--json"],
                         check=True, capture_output=True, text=True, env=dict(env) if env else None, timeout=60)
    return str(json.loads(out.stdout)["key"])


def service_env(extra: Mapping[str, str] | None = None, detectors: str | None = None) -> dict[str, str]:
    """The environment for ``aimds serve`` in a benchmark: rate limit raised, access log off, no inherited
    ``AIMDS_*`` settings except those given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMDS_")}
    env.update({"AIMDS_RATE_LIMIT_PER_S": "1000000000", "AIMDS_RATE_LIMIT_BURST": "1000000000",
                "AIMDS_ACCESS_LOG": "0"})
    if detectors:
        env["AIMDS_DETECTORS"] = detectors
    env.update(extra or {})
    return env


class ServerProcess:
    """A server child in its own process group (so that SIGKILL reaches the workers too)."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(self.argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=cwd)

    @property
    def pgid(self) -> int:
        """The process group id (the child's pid)."""
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the parent process still runs."""
        return self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll ``ready`` until it returns True; raise with the log tail if the server dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{what}: server exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{what}: not ready after {timeout_s} s\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        """The end of the server's log."""
        self._log.flush()
        try:
            return self.log_path.read_bytes()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def kill9(self) -> None:
        """SIGKILL the whole process group (parent and workers) and reap the parent."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._wait_group_gone(10.0)
        self._log.close()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the group, wait for a graceful exit, SIGKILL what is left. Returns the exit status."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.pgid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._wait_group_gone(timeout_s)
        with contextlib.suppress(ProcessLookupError):  # stragglers (a worker that ignored SIGTERM)
            os.killpg(self.pgid, signal.SIGKILL)
        self._log.close()
        return self.proc.returncode

    def _wait_group_gone(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def start_aimds(data_dir: Path, port: int, workers: int, env: Mapping[str, str], log_path: Path) -> ServerProcess:
    """Start ``aimds serve`` on 127.0.0.1:port."""
    argv = [*aimds_cli(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--data-dir", str(data_dir)]
    return ServerProcess(argv, env, log_path)


def wait_aimds_ready(server: ServerProcess, port: int, key: str, timeout_s: float = 120.0,
                     consecutive: int = 4) -> None:
    """Wait until ``/readyz`` answers 200 ``consecutive`` times in a row (so that every worker is likely up)."""
    streak = [0]

    def ready() -> bool:
        r = httpx.get(f"http://127.0.0.1:{port}/readyz", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        streak[0] = streak[0] + 1 if r.status_code == 200 else 0
        return streak[0] >= consecutive

    server.wait_until(ready, timeout_s, "aimds serve")


def post_json(port: int, path: str, body: Any, key: str | None = None, timeout_s: float = 30.0) -> httpx.Response:
    """One POST (for readiness checks of the bare app)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"http://127.0.0.1:{port}{path}", json=body, headers=headers, timeout=timeout_s)
