"""Durability under ``kill -9``: every event id the API acknowledged survives, and the audit chain verifies.

    python benchmarks/durability.py [--runs 10] [--load-s 4] [--concurrency 64] [--workers 2]

One data directory for all runs. Each run drives the running ``aimds serve`` (2 workers) with ~64 concurrent
requests (single ``/v1/detect`` calls and some small ``/v1/detect/batch`` calls), records every ``event_id``
of a 200 response, sends SIGKILL to the server's whole process group mid-load, restarts it on the same data
directory, then checks every acknowledged id with ``GET /v1/events/{id}`` (analyst key), calls
``GET /v1/audit/verify`` and runs ``aimds audit verify --data-dir``. The restarted server is the one the next
run loads. At the end the server is stopped and every id of every run is looked up again in the store itself
(``SQLiteStore.get_event``). Prints one JSON line per run and a summary; exits 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import (
    BENCH_DIR,
    ServerProcess,
    aimds_cli,
    create_key,
    free_port,
    service_env,
    start_aimds,
    wait_aimds_ready,
)

FAST_DETECTORS = "obfuscation,signatures,classifier"
TEXTS = BENCH_DIR / "data" / "load_texts.json"


@dataclass
class LoadResult:
    """What one load phase saw."""

    acknowledged: list[str] = field(default_factory=list)
    ok_requests: int = 0
    bad_status: dict[int, int] = field(default_factory=dict)   # non-200 answers before the kill
    failed_before_kill: int = 0                                # transport errors before the kill
    failed_after_kill: int = 0                                 # requests cut off by the kill
    in_flight_at_kill: int = 0


class Cluster:
    """The server under test, its data directory, port and keys; restarts keep the directory and port."""

    def __init__(self, data_dir: Path, workers: int, detectors: str | None, log_dir: Path) -> None:
        self.data_dir = data_dir
        self.workers = workers
        # durability is about the store: the attack memory's embedding model only slows the load down
        self.env = service_env({"AIMDS_MEMORY": "0"}, detectors=detectors)
        self.log_dir = log_dir
        self.port = free_port()
        self.detector_key = create_key(data_dir, "detector", self.env)
        self.analyst_key = create_key(data_dir, "analyst", self.env)
        self.server: ServerProcess | None = None
        self.starts = 0

    def start(self) -> float:
        """Start (or restart) the server; returns seconds until it was ready."""
        t0 = time.monotonic()
        self.starts += 1
        self.server = start_aimds(self.data_dir, self.port, self.workers, self.env,
                                  self.log_dir / f"serve-{self.starts}.log")
        wait_aimds_ready(self.server, self.port, self.analyst_key)
        return time.monotonic() - t0

    def kill9(self) -> None:
        """SIGKILL the whole process group."""
        assert self.server is not None
        self.server.kill9()

    def stop(self) -> int | None:
        """Graceful stop."""
        assert self.server is not None
        return self.server.stop()

    @property
    def base(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.port}"


def bodies(texts: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """The request mix: single detects, with every 8th request a batch of 8 texts."""
    out: list[tuple[str, dict[str, Any]]] = []
    for i, t in enumerate(texts):
        out.append(("/v1/detect", {"text": t, "session_id": f"dur-{i % 5}"}))
        if i % 8 == 7:
            out.append(("/v1/detect/batch", {"items": [{"text": texts[(i + j) % len(texts)]} for j in range(8)]}))
    return out


async def drive(cluster: Cluster, mix: list[tuple[str, dict[str, Any]]], load_s: float,
                concurrency: int, kill: Callable[[], None]) -> LoadResult:
    """``concurrency`` clients post the mix in a loop; after ``load_s`` the server is killed under load."""
    result = LoadResult()
    killed = asyncio.Event()
    in_flight = [0]
    headers = {"Authorization": f"Bearer {cluster.detector_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=cluster.base, headers=headers, limits=limits, timeout=30.0) as client:

        async def worker(n: int) -> None:
            i = n * 7
            while not killed.is_set():
                path, body = mix[i % len(mix)]
                i += 1
                in_flight[0] += 1
                try:
                    r = await client.post(path, json=body)
                except httpx.HTTPError:
                    if killed.is_set():
                        result.failed_after_kill += 1
                        return
                    result.failed_before_kill += 1
                    continue
                finally:
                    in_flight[0] -= 1
                if r.status_code != 200:
                    result.bad_status[r.status_code] = result.bad_status.get(r.status_code, 0) + 1
                    continue
                data = r.json()  # the full body was received: the id is acknowledged
                result.ok_requests += 1
                if path == "/v1/detect":
                    result.acknowledged.append(data["event_id"])
                else:
                    result.acknowledged.extend(item["event_id"] for item in data["items"])

        tasks = [asyncio.create_task(worker(n)) for n in range(concurrency)]
        await asyncio.sleep(load_s)
        result.in_flight_at_kill = in_flight[0]
        kill()  # SIGKILL while requests are in flight
        killed.set()
        await asyncio.wait(tasks, timeout=60)
        for t in tasks:
            t.cancel()
    return result


async def check_ids(cluster: Cluster, ids: list[str], concurrency: int = 32) -> list[str]:
    """The acknowledged ids that ``GET /v1/events/{id}`` does not find."""
    missing: list[str] = []
    headers = {"Authorization": f"Bearer {cluster.analyst_key}"}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in ids:
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=cluster.base, headers=headers, timeout=30.0) as client:

        async def worker() -> None:
            while not queue.empty():
                event_id = queue.get_nowait()
                r = await client.get(f"/v1/events/{event_id}")
                if r.status_code != 200 or r.json().get("id") != event_id:
                    missing.append(event_id)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return missing


def api_verify(cluster: Cluster) -> dict[str, Any]:
    """``GET /v1/audit/verify``."""
    r = httpx.get(cluster.base + "/v1/audit/verify", headers={"Authorization": f"Bearer {cluster.analyst_key}"},
                  timeout=120)
    return {"status": r.status_code, **(r.json() if r.headers.get("content-type", "").startswith("application/json")
                                        else {})}


def cli_verify(cluster: Cluster) -> dict[str, Any]:
    """``aimds audit verify --data-dir``: exit status and its JSON report."""
    proc = subprocess.run([*aimds_cli(), "audit", "verify", "--data-dir", str(cluster.data_dir)],
                          capture_output=True, text=True, env=cluster.env, timeout=300)
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        report = {"stdout": proc.stdout[-500:], "stderr": proc.stderr[-500:]}
    return {"exit": proc.returncode, "report": report}


def store_check(data_dir: Path, ids: list[str]) -> list[str]:
    """The ids the store itself does not hold (opened directly, server stopped)."""
    from aimds.store.sqlite import SQLiteStore

    with SQLiteStore(data_dir) as store:
        return [i for i in ids if store.get_event(i) is None]


def run_durability(runs: int = 10, load_s: float = 4.0, concurrency: int = 64, workers: int = 2,
                   detectors: str | None = FAST_DETECTORS, data_dir: Path | None = None,
                   emit: Callable[[dict[str, Any]], None] | None = None, cli_each_run: bool = True
                   ) -> dict[str, Any]:
    """The whole experiment; returns the summary (``emit`` receives each run's record as it finishes).
    ``cli_each_run=False`` runs ``aimds audit verify`` only at the end (the API's verify still runs each time)."""
    texts = [t["text"] for t in json.loads(TEXTS.read_text(encoding="utf-8"))["items"]]
    mix = bodies(texts)
    with tempfile.TemporaryDirectory(prefix="aimds-durability-") as tmp:
        work = Path(tmp)
        data = data_dir or work / "data"
        cluster = Cluster(data, workers, detectors, work)
        cluster.start()
        all_ids: list[str] = []
        records: list[dict[str, Any]] = []
        try:
            for run in range(1, runs + 1):
                t0 = time.monotonic()
                load = asyncio.run(drive(cluster, mix, load_s, concurrency, cluster.kill9))
                restart_s = cluster.start()
                missing = asyncio.run(check_ids(cluster, load.acknowledged))
                api = api_verify(cluster)
                cli = cli_verify(cluster) if cli_each_run else {"exit": None, "report": None}
                all_ids.extend(load.acknowledged)
                rec = {
                    "run": run,
                    "acknowledged": len(load.acknowledged),
                    "ok_requests": load.ok_requests,
                    "in_flight_at_kill": load.in_flight_at_kill,
                    "failed_after_kill": load.failed_after_kill,
                    "failed_before_kill": load.failed_before_kill,
                    "bad_status_before_kill": {str(k): v for k, v in load.bad_status.items()},
                    "missing": len(missing),
                    "missing_ids": missing[:5],
                    "restart_s": round(restart_s, 2),
                    "api_verify_ok": api.get("ok") is True,
                    "cli_verify_exit": cli["exit"],
                    "cli_verify": cli["report"],
                    "run_s": round(time.monotonic() - t0, 2),
                }
                records.append(rec)
                if emit:
                    emit(rec)
        finally:
            cluster.stop()
        final_missing = store_check(data, all_ids)
        final_cli = cli_verify(cluster)
        final_records = (final_cli["report"] or {}).get("records")
    ok = (all(r["missing"] == 0 and r["api_verify_ok"] and r["cli_verify_exit"] in (0, None)
              and not r["bad_status_before_kill"] and r["failed_before_kill"] == 0 for r in records)
          and not final_missing and final_cli["exit"] == 0)
    return {
        "benchmark": "durability",
        "runs": runs,
        "load_s": load_s,
        "concurrency": concurrency,
        "workers": workers,
        "detectors": detectors or "default",
        "acknowledged_total": len(all_ids),
        "missing_total": sum(r["missing"] for r in records),
        "missing_in_store_at_end": len(final_missing),
        "verify_failures": sum(1 for r in records if not r["api_verify_ok"] or r["cli_verify_exit"] not in (0, None)),
        "final_cli_verify_exit": final_cli["exit"],
        "final_chain_records": final_records,
        "errors_before_kill": sum(r["failed_before_kill"] + sum(r["bad_status_before_kill"].values())
                                  for r in records),
        "ok": ok,
        "per_run": records,
    }


def main(argv: list[str] | None = None) -> int:
    """Run and print JSON lines (one per run) and the summary."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--load-s", type=float, default=4.0, help="seconds of load before the kill")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--detectors", default=FAST_DETECTORS,
                   help=f"AIMDS_DETECTORS for the server (default {FAST_DETECTORS}; 'default' for the configured ones)")
    p.add_argument("--data-dir", type=Path, help="keep the data here (default: a temporary directory)")
    args = p.parse_args(argv)
    summary = run_durability(args.runs, args.load_s, args.concurrency, args.workers,
                             None if args.detectors == "default" else args.detectors, args.data_dir,
                             emit=lambda rec: print(json.dumps(rec), flush=True))
    print(json.dumps({k: v for k, v in summary.items() if k != "per_run"}, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
