"""Per-request costs of the service's own steps, in process, without HTTP (µs per request).

    .venv/bin/python benchmarks/service_overhead.py [--detectors obfuscation] [-n 400]

Times, on the ~1 KB texts of ``benchmarks/data/load_texts.json``: the guard's scan with the given
detectors, building the event record (excerpt, HMAC), the verdict's JSON form, the group commit per
record (2,000 concurrent appends), response planning and the metrics update. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from aimds import Settings
from aimds.server.auth import Principal
from aimds.server.service import Service
from aimds.server.settings import ServiceSettings
from aimds.types import ScanRequest

TEXTS = Path(__file__).resolve().parent / "data" / "load_texts.json"


def per_call_us(fn: Callable[[int], object], n: int) -> float:
    """Mean microseconds of ``fn(i)`` over ``n`` calls."""
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return round((time.perf_counter() - t) / n * 1e6, 1)


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--detectors", default="obfuscation")
    ap.add_argument("-n", type=int, default=400)
    args = ap.parse_args()
    texts = [t["text"] for t in json.loads(TEXTS.read_text("utf-8"))["items"]]
    data_dir = Path(tempfile.mkdtemp(prefix="aimds-overhead-"))
    svc = Service(ServiceSettings(data_dir=data_dir, access_log=False, memory=False,
                                  guard=Settings(detectors=tuple(args.detectors.split(",")))))
    svc.guard.load()
    svc.responses.start()
    who = Principal("bench", "detector", "key")
    reqs = [ScanRequest(text=t) for t in texts]
    verdicts = [svc.guard.scan(r) for r in reqs]
    m = len(reqs)
    out: dict[str, object] = {"detectors": args.detectors, "n": args.n, "load_avg_1m": round(os.getloadavg()[0], 2)}
    out["scan_us"] = per_call_us(lambda i: svc.guard.scan(reqs[i % m]), args.n)
    out["event_record_us"] = per_call_us(lambda i: svc.event(reqs[i % m], verdicts[i % m], who, "/v1/detect"), args.n)
    out["verdict_json_us"] = per_call_us(lambda i: verdicts[i % m].to_dict(), args.n)
    events = [svc.event(reqs[i % m], verdicts[i % m], who, "/v1/detect") for i in range(2000)]
    done, count = threading.Event(), [0]

    def committed(stored: object, error: object) -> None:
        count[0] += 1
        if count[0] == len(events):
            done.set()

    t = time.perf_counter()
    for e in events:
        svc.store.append([e], committed)
    done.wait(120)
    out["group_commit_us_per_record"] = round((time.perf_counter() - t) / len(events) * 1e6, 1)
    out["group_commit_batches"] = svc.store.stats["batches"]
    stored = svc.store.append_sync([svc.event(reqs[i % m], verdicts[i % m], who, "/v1/detect") for i in range(400)])
    out["respond_us"] = per_call_us(lambda i: svc.respond([stored[i % len(stored)]]), min(args.n, len(stored)))
    out["metrics_us"] = per_call_us(lambda i: svc.metrics.observe_verdict(verdicts[i % m]), args.n)
    svc.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
