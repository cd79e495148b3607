"""Schema-driven API fuzz: schemathesis generates requests (valid and invalid) for every operation in the live
server's ``/openapi.json`` and no response may be a 5xx.

The server is a real ``aimds serve`` on loopback (one worker, fast detectors, a real SQLite data directory),
authenticated with an admin key so that every operation is reachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error

# examples per operation and mode; FUZZ_MAX_EXAMPLES=500 FUZZ_RANDOM=1 for a longer, randomised hunt
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
DERANDOMIZE = os.environ.get("FUZZ_RANDOM", "") != "1"
# operations the fuzz must reach (it fuzzes every operation in the live schema, these included)
KNOWN_OPERATIONS = [
    "GET /healthz", "GET /readyz", "GET /metrics",
    "POST /v1/detect", "POST /v1/detect/batch", "POST /v1/detect/stream", "POST /v1/mitigate",
    "GET /v1/events", "GET /v1/events/{event_id}", "GET /v1/audit/verify",
    "POST /v1/keys", "GET /v1/keys", "DELETE /v1/keys/{key_id}", "GET /v1/config",
]
FAST_DETECTORS = "obfuscation,signatures,classifier"

pytestmark = pytest.mark.slow


def _aimds() -> list[str]:
    script = Path(sys.executable).parent / "aimds"
    return [str(script)] if script.exists() else [sys.executable, "-c",
                                                   "import sys; from aimds.cli import main; sys.exit(main())"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """``aimds serve`` in its own process group on loopback."""

    proc: subprocess.Popen[bytes]
    url: str
    auth: dict[str, str]
    log: Path

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def start_live_server(work: Path) -> LiveServer:
    """Start the server with an admin key and wait until it is ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMDS_")}
    env.update({"AIMDS_DETECTORS": FAST_DETECTORS, "AIMDS_RATE_LIMIT_PER_S": "1000000",
                "AIMDS_RATE_LIMIT_BURST": "1000000", "AIMDS_ACCESS_LOG": "0"})
    data = work / "data"
    out = subprocess.run([*_aimds(), "keys", "create", "--role", "admin", "--data-dir", str(data), "--json"],
                         check=True, capture_output=True, text=True, env=env, timeout=60)
    auth = {"Authorization": "Bearer " + json.loads(out.stdout)["key"]}
    port = _free_port()
    log = work / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([*_aimds(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                 "--data-dir", str(data)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    server = LiveServer(proc, f"http://127.0.0.1:{port}", auth, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aimds serve exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/readyz", headers=auth, timeout=5).status_code == 200:
                return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"aimds serve not ready: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_live_server(tmp_path_factory.mktemp("fuzz"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(live: LiveServer) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json", headers=live.auth, timeout=30)
    schema.config.update(base_url=live.url, headers=live.auth, request_timeout=30)
    return schema


def _negatable(operation: APIOperation) -> bool:
    """Whether negative mode can make a request invalid: a body or a query/header parameter (a free-form string
    path parameter has no invalid value, and auth is not part of the schema)."""
    raw = operation.definition.raw
    return bool(raw.get("requestBody") or any(p.get("in") != "path" for p in raw.get("parameters", [])))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_server_errors(mode: GenerationMode, api_schema: schemathesis.BaseSchema, live: LiveServer) -> None:
    """For every operation in the live schema, generated requests (schema-valid ones; invalid ones in negative
    mode) never get a 5xx. Failures carry the curl command that reproduces them."""
    failures: list[str] = []
    fuzzed: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if mode == GenerationMode.NEGATIVE and not _negatable(operation):
            continue

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy(mode))
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=live.url, headers=live.auth, checks=[not_a_server_error], timeout=30)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then fail once
            failures.append(f"{operation.label}: {exc}")
        fuzzed.append(operation.label)
    assert set(KNOWN_OPERATIONS) <= set(fuzzed) or mode == GenerationMode.NEGATIVE, fuzzed
    assert not failures, "\n\n".join(failures)


def test_server_survived_the_fuzz(live: LiveServer) -> None:
    """After the fuzz the server still answers and its audit chain is intact."""
    r = httpx.get(live.url + "/v1/audit/verify", headers=live.auth, timeout=60)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
