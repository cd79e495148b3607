"""Signature matching cost on text RE2 has seen before versus text it has not (lazy DFA construction).

RE2 builds its DFA states on demand, so the first pass over new text pays for states a second pass
reuses. Prints p50/p99/max (µs) of ``RuleSet.matching`` over the rule views of ``aimds bench``'s
1,000-character texts, first pass then second pass, for each chunk size (rules per RE2 ``Set``), and
the cost of ``benchmarks/hostile.py``'s 190 KB of random words on a fresh automaton: the first such text,
a second one, the first again.

    .venv/bin/python benchmarks/signature_dfa.py [--chunks 64,128,256] [-n 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from aimds.detect.signature_detector import RULE_VIEWS
from aimds.detect.signatures import RuleSet, load_rules
from aimds.eval.bench import bench_texts
from aimds.normalize import normalize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import _random_words


def _pct(xs: list[float]) -> dict[str, float]:
    return {"p50_us": round(float(np.percentile(xs, 50)), 1), "p99_us": round(float(np.percentile(xs, 99)), 1),
            "max_us": round(float(max(xs)), 1)}


def main() -> None:
    """Print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", default="64,128,256")
    ap.add_argument("-n", type=int, default=400)
    args = ap.parse_args()
    rules = load_rules()
    views = [[v.text.encode("utf-8", "surrogatepass") for v in normalize(t).views if v.name in RULE_VIEWS]
             for t in bench_texts(1000, args.n, seed=11)]
    out: dict[str, object] = {"texts": args.n, "rules": len(rules)}
    for chunk in (int(c) for c in args.chunks.split(",")):
        rs = RuleSet(rules, chunk=chunk)
        passes = []
        for _ in range(2):
            times = []
            for data in views:
                t0 = time.perf_counter_ns()
                for d in data:
                    rs.matching(d)
                times.append((time.perf_counter_ns() - t0) / 1000)
            passes.append(_pct(times))
        fresh = RuleSet(rules, chunk=chunk)
        long_ms = []
        for seed in (1, 5, 1):
            data = _random_words(190_000, seed=seed).encode()
            t0 = time.perf_counter()
            fresh.matching(data)
            long_ms.append(round((time.perf_counter() - t0) * 1000, 1))
        out[f"chunk_{chunk}"] = {"first_pass": passes[0], "second_pass": passes[1],
                                 "random_words_190kb_ms": dict(zip(("first", "another", "first_again"), long_ms,
                                                                   strict=True))}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
