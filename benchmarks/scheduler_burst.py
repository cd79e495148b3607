"""Response scheduler under a burst, with a slow webhook receiver, then a kill -9 and a restart.

Phase 1 (burst): --actions response actions (default 10,000) made from random verdicts by the shipped
rules (data/response/actions.yaml) and submitted as fast as one thread can; the webhook receiver is a
real HTTP server on loopback that sleeps --webhook-delay-ms on every request and checks each HMAC
signature. Reported: submit() cost, critical actions within their 50 ms deadline, missed deadlines
and shed actions by priority, webhook deliveries so far and the outbox state.

Phase 2 (restart): a child process accepts --restart-alerts webhook alerts while its receiver is down,
and is killed with SIGKILL before delivering any; a new scheduler on the same data directory delivers
them to a live receiver. Reported: alerts pending after the kill, delivered after the restart,
distinct deliveries at the receiver, seconds to deliver.

    .venv/bin/python benchmarks/scheduler_burst.py [--actions 10000] [--webhook-delay-ms 200] > out.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aimds.respond.actions import ActionKind, Priority, ResponseAction, ResponseConfig
from aimds.respond.scheduler import LaneSpec, Scheduler, default_handlers
from aimds.respond.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, WebhookSender, verify_signature
from aimds.store.outbox import Outbox, SessionFlags
from aimds.store.sqlite import SQLiteStore

SECRET = b"bench-secret-0123456789abcdef"
CATEGORIES = ["prompt_injection", "indirect_injection", "jailbreak", "prompt_leak", "secret", "tool_misuse", "pii"]
VERDICTS = ["block"] * 5 + ["challenge", "escalate", "monitor", "sanitize", "monitor"]


class SlowReceiver:
    """A webhook receiver in its own process (as a real one would be): sleeps before answering, checks every
    signature, and appends each valid delivery id to a file."""

    def __init__(self, delay_s: float, log_path: Path) -> None:
        self.log_path = log_path
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(delay_s), str(log_path)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/hook"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def ids(self) -> Counter[str]:
        lines = self.log_path.read_text().splitlines() if self.log_path.exists() else []
        return Counter(x for x in lines if x and x != "INVALID")

    def invalid(self) -> int:
        return self.log_path.read_text().splitlines().count("INVALID") if self.log_path.exists() else 0


def receiver_main(delay_s: float, log_path: str) -> None:
    """Serve until terminated; one line per request in ``log_path``: the delivery id, or INVALID."""
    lock = threading.Lock()
    out = open(log_path, "a", buffering=1)  # noqa: SIM115

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify_signature(SECRET, self.headers.get(SIGNATURE_HEADER, ""), body)
            time.sleep(delay_s)
            with lock:
                out.write((self.headers.get(DELIVERY_HEADER, "") if ok else "INVALID") + "\n")
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    server.serve_forever()


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 3) if v else 0.0


def burst(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    receiver = SlowReceiver(args.webhook_delay_ms / 1000.0, data_dir / "receiver.log")
    config = ResponseConfig.load()
    crit_latency: list[float] = []
    crit_lock = threading.Lock()

    def on_event(name: str, action: ResponseAction, info: Any) -> None:
        if name == "executed" and action.priority is Priority.CRITICAL:
            with crit_lock:
                crit_latency.append(info["latency_ms"])

    store = SQLiteStore(data_dir)
    try:
        webhook = WebhookSender(receiver.url, SECRET, timeout_s=5.0, backoff_base_s=0.5)
        sched = Scheduler(default_handlers(SessionFlags(store), webhook), config=config, outbox=Outbox(store),
                          lanes={"local": LaneSpec(1, 20_000), "io": LaneSpec(args.io_workers, args.io_capacity)},
                          on_event=on_event).start()
        rng = random.Random(7)
        submitted: Counter[str] = Counter()
        submit_us: list[float] = []
        n = i = 0
        t_start = time.perf_counter()
        while n < args.actions:
            cats = rng.sample(CATEGORIES, rng.randint(1, 2))
            actions = config.for_verdict(rng.choice(VERDICTS), cats, rng.uniform(0.5, 1.0),
                                         session_id=f"sess-{i % 3000}", event_id=f"evt_bench{i}")
            i += 1
            for a in actions[: args.actions - n]:
                t0 = time.perf_counter()
                sched.submit(a)
                submit_us.append((time.perf_counter() - t0) * 1e6)
                submitted[f"{a.priority.label}/{a.kind}"] += 1
                n += 1
        burst_s = time.perf_counter() - t_start
        local = sched._lanes["local"]
        end = time.time() + 30
        while not local.idle and time.time() < end:
            time.sleep(0.01)
        local_done_s = time.perf_counter() - t_start
        time.sleep(args.observe_s)
        st = sched.stats()
        outbox_counts = Outbox(store).counts()
        sched.close(drain_s=0.0)
    finally:
        store.close()
        receiver.close()
    delivered = receiver.ids()
    crit = sorted(crit_latency)
    return {
        "actions": n, "incidents": i, "submitted": dict(sorted(submitted.items())),
        "burst_seconds": round(burst_s, 3), "local_lane_drained_after_s": round(local_done_s, 3),
        "submit_us": {"p50": _pct(submit_us, 0.5), "p99": _pct(submit_us, 0.99), "max": round(max(submit_us), 1)},
        "critical": {"n": len(crit), "within_50ms": sum(x <= 50.0 for x in crit), "p50_ms": _pct(crit, 0.5),
                     "p99_ms": _pct(crit, 0.99), "max_ms": round(crit[-1], 3) if crit else None},
        "executed": st["executed"], "missed": st["missed"], "shed": st["shed"], "failed": st["failed"],
        "retries": st["retries"], "latency_ms": st["latency_ms"],
        "webhook": {"delay_ms": args.webhook_delay_ms, "io_workers": args.io_workers,
                    "io_capacity": args.io_capacity, "observed_s": args.observe_s,
                    "delivered_valid": sum(delivered.values()), "invalid": receiver.invalid()},
        "outbox_at_stop": outbox_counts,
    }


def child(data_dir: str, n: int) -> None:
    """Accept ``n`` alerts with the receiver down, say how many rows are durable, then wait to be killed."""
    with socket.socket() as s:  # a port nobody listens on: every attempt fails and is retried later
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    store = SQLiteStore(data_dir)
    config = ResponseConfig.load()
    sched = Scheduler(default_handlers(webhook=WebhookSender(dead, SECRET, backoff_base_s=30.0)), config=config,
                      outbox=Outbox(store, lease_s=600)).start()
    for i in range(n):
        sched.submit(config.make(ActionKind.ALERT_WEBHOOK, session_id=f"s{i}", event_id=f"evt_restart{i}"))
    store.append_sync([])
    print(json.dumps(Outbox(store).counts()), flush=True)
    time.sleep(600)


def restart(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(data_dir), str(args.restart_alerts)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    before = json.loads(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    receiver = SlowReceiver(args.webhook_delay_ms / 1000.0, data_dir / "receiver.log")
    try:
        with SQLiteStore(data_dir) as store:
            after_kill = Outbox(store).counts()
            t0 = time.perf_counter()
            sched = Scheduler(default_handlers(webhook=WebhookSender(receiver.url, SECRET)), outbox=Outbox(store),
                              lanes={"io": LaneSpec(args.io_workers, args.io_capacity)}, sweep_s=0.5).start()
            end = time.time() + args.restart_timeout_s
            while Outbox(store).counts()["pending"] and time.time() < end:
                time.sleep(0.05)
            seconds = time.perf_counter() - t0
            sched.close(drain_s=0.5)
            final = Outbox(store).counts()
    finally:
        receiver.close()
    ids = receiver.ids()
    return {"alerts": args.restart_alerts, "child_exit": "SIGKILL", "durable_before_kill": before,
            "pending_after_kill": after_kill["pending"], "delivered_after_restart": final["delivered"],
            "pending_at_end": final["pending"], "distinct_at_receiver": len(ids),
            "duplicates_at_receiver": sum(c - 1 for c in ids.values()), "seconds": round(seconds, 3)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        receiver_main(float(sys.argv[2]), sys.argv[3])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actions", type=int, default=10_000)
    p.add_argument("--webhook-delay-ms", type=float, default=200.0)
    p.add_argument("--io-workers", type=int, default=8)
    p.add_argument("--io-capacity", type=int, default=2_000)
    p.add_argument("--observe-s", type=float, default=3.0, help="How long webhooks run after the burst.")
    p.add_argument("--restart-alerts", type=int, default=1_000)
    p.add_argument("--restart-timeout-s", type=float, default=120.0)
    args = p.parse_args()
    logging.getLogger("aimds.alerts").disabled = True      # the log sink is not what is measured
    logging.getLogger("aimds.respond").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        out = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "load_average_1m": round(os.getloadavg()[0], 2)},
               "burst": burst(args, Path(d1)), "restart": restart(args, Path(d2))}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
