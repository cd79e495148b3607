"""The n-gram model's window scoring: windows featurised together vs one at a time (same features).

For bench texts of ~1, 10 and 100 KB, prints the CPU time per text of ``LinearModel.score_windows`` (which
featurises >= ``BATCH_MIN_WINDOWS`` distinct windows together) and of scoring each window alone, their
ratio, and the largest probability difference (float64 vs float32 sums).

Usage: ``.venv/bin/python benchmarks/linear_windows.py [--reps 3]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from aimds.detect.linear_model import LinearModel, windows
from aimds.eval.bench import bench_texts
from aimds.normalize import normalize


def main() -> None:
    """Time both paths per size; print one JSON line per size."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    m = LinearModel.load()

    def alone(t: str) -> list[tuple[int, int, float]]:
        return [(s, e, m.proba(m.logit(t[s:e]))) for s, e in windows(len(t), m.window, m.stride)]

    for size, n in ((1000, 60), (10_000, 30), (100_000, 5)):
        texts = [normalize(t).folded.text for t in bench_texts(size, n, seed=3)]

        def cpu(fn: Callable[[str], object], texts: list[str] = texts) -> float:
            best = float("inf")
            for _ in range(args.reps):
                t0 = time.process_time()
                for t in texts:
                    fn(t)
                best = min(best, time.process_time() - t0)
            return best / len(texts) * 1e6

        together, one = cpu(m.score_windows), cpu(alone)
        diff = max(abs(a[2] - b[2]) for t in texts for a, b in zip(m.score_windows(t), alone(t), strict=True))
        print(json.dumps({"chars": size, "texts": n, "together_us": round(together), "alone_us": round(one),
                          "ratio": round(together / one, 3), "max_abs_dp": diff}))


if __name__ == "__main__":
    main()
