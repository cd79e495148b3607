"""Default pipeline latency with the attack memory on, with and without reusing the encoder's run (issue 4).

Three guards over the same texts, interleaved text by text so that machine load hits them alike:
``base`` (the default detectors), ``memory`` (+ memory stage embedding the text itself) and ``shared``
(+ memory stage pooling the encoder graph's second output when the encoder ran). The embedding cache is
off (bench texts repeat). Reports p50/p99 (ms) per size, the memory stage's share, the load average and
the CPU count: compare ratios within one run on a loaded machine. ``cpu_*`` is the process CPU time of
each scan (all threads): much less sensitive to other processes than wall time.

Usage: ``.venv/bin/python benchmarks/memory_latency.py [--n 300] [--sizes 1000] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from aimds import Guard, Settings
from aimds.config import DEFAULT_DETECTORS
from aimds.eval.bench import bench_texts


def guard(memory: bool, reuse: bool = True) -> Guard:
    """The default guard, optionally with the seed memory stage."""
    names = (*DEFAULT_DETECTORS, "memory") if memory else DEFAULT_DETECTORS
    g = Guard(Settings(detectors=names, detector_options={"memory": {"reuse_encoder": reuse}})).load()
    for d in g.detectors:
        emb = getattr(getattr(d, "memory", None), "embedder", None)
        if emb is not None:
            emb._cache_size = 0
    return g


def main() -> None:
    """Run and print JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--sizes", default="1000")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    guards = {"base": guard(False), "memory": guard(True, reuse=False), "shared": guard(True, reuse=True)}
    report: dict[str, object] = {"load_avg_start": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
                                 "n": args.n, "sizes": {}}
    for size in (int(x) for x in args.sizes.split(",")):
        texts = bench_texts(size, args.n + args.warmup, seed=11)
        samples: dict[str, list[float]] = {k: [] for k in guards}
        cpu: dict[str, list[float]] = {k: [] for k in guards}
        mem_stage: dict[str, list[float]] = {"memory": [], "shared": []}
        encoder_ran = 0
        for i, t in enumerate(texts):
            for name, g in guards.items():
                c0, t0 = time.process_time(), time.perf_counter()
                v = g.scan(t)
                ms = (time.perf_counter() - t0) * 1000
                if i >= args.warmup:
                    samples[name].append(ms)
                    cpu[name].append((time.process_time() - c0) * 1000)
                    if name in mem_stage and "memory" in v.latency_us:
                        mem_stage[name].append(v.latency_us["memory"] / 1000)
                    encoder_ran += name == "shared" and "encoder" in v.latency_us
        out = {name: {"p50_ms": round(float(np.percentile(s, 50)), 2), "p99_ms": round(float(np.percentile(s, 99)), 2),
                      "cpu_p50_ms": round(float(np.percentile(cpu[name], 50)), 2),
                      "cpu_p99_ms": round(float(np.percentile(cpu[name], 99)), 2)}
               for name, s in samples.items()}
        for name, s in mem_stage.items():
            out[name]["memory_stage_p50_ms"] = round(float(np.percentile(s, 50)), 2) if s else None
            out[name]["memory_stage_p99_ms"] = round(float(np.percentile(s, 99)), 2) if s else None
        out["ratios_p99"] = {f"{k}/base": round(out[k]["p99_ms"] / out["base"]["p99_ms"], 3)
                             for k in ("memory", "shared")}
        out["ratios_cpu_p99"] = {f"{k}/base": round(out[k]["cpu_p99_ms"] / out["base"]["cpu_p99_ms"], 3)
                                 for k in ("memory", "shared")}
        out["encoder_share"] = round(encoder_ran / args.n, 3)
        report["sizes"][str(size)] = out  # type: ignore[index]
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()
