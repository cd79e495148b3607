"""HTTP load benchmark: ``aimds serve`` next to a bare FastAPI app, both driven by wrk on loopback in the same run.

    python benchmarks/load.py [--profile default|fast] [--batch] [--duration 15] [--workers 2] [--connections 64]

Starts the bare app (``benchmarks/bare_app.py``: one POST endpoint parsing a pydantic body) and then
``aimds serve`` (fresh data directory, a detector key, rate limit raised) with the same number of workers, one
at a time, and drives each with ``wrk`` (Lua script ``benchmarks/wrk/post.lua``) posting a mix of ~1 KB benign
and attack texts (``benchmarks/data/load_texts.json``, 30% attacks). Prints one JSON report: req/s, latency
p50/p90/p99, errors (non-2xx responses + socket errors + timeouts) for each server and the ratio aimds/bare.
With ``--batch`` it posts ``/v1/detect/batch`` with 256 texts per request and also reports texts/s.

Needs Debian's ``wrk`` (``apt-get install -y wrk``); installs nothing itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    ServerProcess,
    create_key,
    free_port,
    post_json,
    service_env,
    start_aimds,
    wait_aimds_ready,
)

TEXTS = BENCH_DIR / "data" / "load_texts.json"
LUA = BENCH_DIR / "wrk" / "post.lua"
FAST_DETECTORS = "obfuscation,signatures,classifier"
BATCH_SIZE = 256
TARGETS = {"ratio_min": 0.60, "p99_ms_max": 50.0, "errors_max": 0, "batch_texts_per_s_min": 20_000}


def load_texts(path: Path = TEXTS) -> list[dict[str, str]]:
    """The benchmark's texts: ``[{"label": "benign"|"attack", "text": ...}, ...]``."""
    return list(json.loads(path.read_text(encoding="utf-8"))["items"])


def write_bodies(texts: list[dict[str, str]], batch: bool, out: Path) -> Path:
    """One JSON body per line: single detect requests, or batches of BATCH_SIZE texts in rotating order."""
    lines = []
    if batch:
        n = len(texts)
        for start in range(min(n, 8)):
            items = [{"text": texts[(start + i * 3) % n]["text"]} for i in range(BATCH_SIZE)]
            lines.append(json.dumps({"items": items}, ensure_ascii=False))
    else:
        lines = [json.dumps({"text": t["text"]}, ensure_ascii=False) for t in texts]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def run_wrk(wrk: str, url: str, bodies: Path, key: str | None, *, duration_s: float, connections: int,
            threads: int, timeout_s: float) -> dict[str, Any]:
    """Run wrk once and return its summary (parsed from the Lua script's WRK_JSON line)."""
    argv = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
            "--timeout", f"{max(1, round(timeout_s))}s", "-s", str(LUA), url, "--", str(bodies), key or ""]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + timeout_s + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no WRK_JSON line in wrk output:\n{proc.stdout}\n{proc.stderr}")
    raw = json.loads(line[len("WRK_JSON "):])
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "req_per_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "latency_ms": {k: round(lat[k] / 1000, 3) for k in ("mean", "p50", "p90", "p99", "p999", "max")},
        "errors": sum(errors.values()),
        "errors_by_kind": {"non_2xx": errors["status"], "connect": errors["connect"], "read": errors["read"],
                           "write": errors["write"], "timeout": errors["timeout"]},
    }


def measure(wrk: str, url: str, bodies: Path, key: str | None, args: argparse.Namespace) -> dict[str, Any]:
    """A warm-up run (discarded) then the measured run."""
    if args.warmup > 0:
        run_wrk(wrk, url, bodies, key, duration_s=args.warmup, connections=args.connections, threads=args.threads,
                timeout_s=args.wrk_timeout)
    result = run_wrk(wrk, url, bodies, key, duration_s=args.duration, connections=args.connections,
                     threads=args.threads, timeout_s=args.wrk_timeout)
    if args.batch:
        result["texts_per_s"] = round(result["req_per_s"] * BATCH_SIZE, 1)
    return result


def bench_bare(wrk: str, bodies: Path, path: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start the bare FastAPI app, measure it, stop it."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--app-dir", str(BENCH_DIR), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(args.workers), "--no-access-log", "--log-level", "warning",
            "--backlog", "4096", "--no-server-header"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMDS_")}
    server = ServerProcess(argv, env, work / "bare.log")
    try:
        sample = json.loads(bodies.read_text(encoding="utf-8").splitlines()[0])
        server.wait_until(lambda: post_json(port, path, sample).status_code == 200, 60, "bare app")
        return measure(wrk, f"http://127.0.0.1:{port}{path}", bodies, None, args)
    finally:
        server.stop()


def bench_aimds(wrk: str, bodies: Path, path: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Start ``aimds serve`` on a fresh data directory, measure it, stop it, and count the stored events."""
    data_dir = work / "aimds-data"
    env = service_env(settings_of(args), detectors=detectors_of(args))
    key = create_key(data_dir, "detector", env)
    port = free_port()
    server = start_aimds(data_dir, port, args.workers, env, work / "aimds.log")
    try:
        wait_aimds_ready(server, port, key)
        result = measure(wrk, f"http://127.0.0.1:{port}{path}", bodies, key, args)
    finally:
        status = server.stop()
    result["server_exit_status"] = status
    return result


def detectors_of(args: argparse.Namespace) -> str | None:
    """The AIMDS_DETECTORS value for the run (None: the configured default)."""
    return args.detectors or (FAST_DETECTORS if args.profile == "fast" else None)


def verdicts(args: argparse.Namespace) -> dict[str, Any]:
    """Scan every text once in process (after a warm-up pass): actions per label and mean scan time per label,
    which bound what the HTTP run can reach."""
    from aimds.config import Settings
    from aimds.pipeline import Guard
    from aimds.types import ScanRequest

    env = service_env(settings_of(args), detectors=detectors_of(args))
    guard = Guard(Settings.from_env(env))
    guard.load()
    texts = load_texts()
    for t in texts:
        guard.scan(ScanRequest(text=t["text"]))
    actions: dict[str, dict[str, int]] = {}
    ms: dict[str, list[float]] = {}
    for t in texts:
        t0 = time.perf_counter()
        v = guard.scan(ScanRequest(text=t["text"]))
        ms.setdefault(t["label"], []).append((time.perf_counter() - t0) * 1000)
        by_action = actions.setdefault(t["label"], {})
        by_action[str(v.action)] = by_action.get(str(v.action), 0) + 1
    total_ms = sum(sum(v) for v in ms.values())
    return {"benchmark": "load-verdicts", "detectors": list(guard.settings.detectors), "actions_by_label": actions,
            "scan_ms_mean_by_label": {k: round(sum(v) / len(v), 2) for k, v in ms.items()},
            "single_thread_scans_per_s": round(1000 * len(texts) / total_ms, 1)}


def report(args: argparse.Namespace, bare: dict[str, Any], aimds: dict[str, Any]) -> dict[str, Any]:
    """The JSON report, with the issue's targets checked."""
    ratio = round(aimds["req_per_s"] / bare["req_per_s"], 3) if bare["req_per_s"] else None
    checks: dict[str, Any] = {"errors_zero": aimds["errors"] <= TARGETS["errors_max"]}
    if args.batch:
        checks["batch_texts_per_s"] = aimds["texts_per_s"] >= TARGETS["batch_texts_per_s_min"]
    else:
        checks["ratio"] = ratio is not None and ratio >= TARGETS["ratio_min"]
        checks["p99_ms"] = aimds["latency_ms"]["p99"] <= TARGETS["p99_ms_max"]
    return {
        "benchmark": "load",
        "mode": "batch" if args.batch else "detect",
        "profile": args.profile,
        "detectors": detectors_of(args) or "default",
        "config": {"workers": args.workers, "connections": args.connections, "threads": args.threads,
                   "duration_s": args.duration, "warmup_s": args.warmup, "batch_size": BATCH_SIZE if args.batch
                   else 1, "texts": len(load_texts()), "wrk": shutil.which("wrk") and _wrk_version()},
        "machine": {"cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version(), "platform": platform.platform()},
        "bare": bare,
        "aimds": aimds,
        "ratio_aimds_over_bare": ratio,
        "targets": TARGETS,
        "meets_targets": checks,
    }


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "wrk"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=("default", "fast"), default="default",
                   help=f"default: the configured detectors; fast: {FAST_DETECTORS}")
    p.add_argument("--batch", action="store_true", help=f"POST /v1/detect/batch with {BATCH_SIZE} texts per request")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of measured load per server")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of discarded load before measuring")
    p.add_argument("--workers", type=int, default=2, help="server worker processes (both servers)")
    p.add_argument("--connections", type=int, default=None, help="wrk connections (default 64; 8 with --batch)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--wrk-timeout", type=float, default=None, help="wrk per-request timeout (default 2 s; 60 s batch)")
    p.add_argument("--detectors", help="comma-separated detector names (overrides --profile)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="FIELD=VALUE",
                   help="a service setting for the aimds server, e.g. --set memory=0 (AIMDS_MEMORY=0); repeatable")
    p.add_argument("--only", choices=("both", "bare", "aimds"), default="both", help="measure one server only")
    p.add_argument("--verdicts", action="store_true",
                   help="no HTTP: scan the texts in process and print actions per label and scan time")
    p.add_argument("--out", type=Path, help="also write the report to this file")
    args = p.parse_args(argv)
    if args.connections is None:
        args.connections = 8 if args.batch else 64
    if args.wrk_timeout is None:
        args.wrk_timeout = 60.0 if args.batch else 2.0
    return args


def settings_of(args: argparse.Namespace) -> dict[str, str]:
    """``--set field=value`` options as ``AIMDS_FIELD`` environment variables."""
    out = {}
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set needs FIELD=VALUE, got {item!r}")
        out["AIMDS_" + key.upper()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    args = parse_args(argv)
    if args.verdicts:
        print(json.dumps(verdicts(args), indent=2))
        return 0
    wrk = shutil.which("wrk")
    if wrk is None:
        print("load.py: `wrk` is not installed (Debian/Ubuntu: `apt-get install -y wrk`); nothing was measured.",
              file=sys.stderr)
        return 2
    path = "/v1/detect/batch" if args.batch else "/v1/detect"
    with tempfile.TemporaryDirectory(prefix="aimds-load-") as tmp:
        work = Path(tmp)
        bodies = write_bodies(load_texts(), args.batch, work / "bodies.jsonl")
        t0 = time.monotonic()
        empty: dict[str, Any] = {"req_per_s": 0.0, "errors": 0, "latency_ms": {"p99": 0.0}, "texts_per_s": 0.0}
        bare = bench_bare(wrk, bodies, path, work, args) if args.only != "aimds" else empty
        aimds = bench_aimds(wrk, bodies, path, work, args) if args.only != "bare" else empty
        out = report(args, bare, aimds)
        out["wall_s"] = round(time.monotonic() - t0, 1)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
