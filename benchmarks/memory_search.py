"""Nearest-neighbour search over N synthetic exemplars clustered like real embeddings (issue 4 bench).

Vectors: 384-d, N/50 cluster centres, members = centre + noise (cosine to the centre ≈ 0.9, like a
family of near-duplicate attacks), unit-normalised. Index: ``aimds.store.vector_index.VectorIndex``
(exact numpy below ``hnsw_min``, usearch HNSW f16 above). Reports p50/p99 of one query (µs, k = 10,
one thread), recall@10 against exact search, build time and resident memory.

Usage: ``.venv/bin/python benchmarks/memory_search.py --n 10000 100000 [1000000] [--json OUT]``
Output shape: ``{"memory": {"N": {"p50_us", "p99_us", "recall_at_10", "build_s", "rss_mb", "index"}}}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from aimds.store.vector_index import VectorIndex

DIM = 384


def clustered(n: int, seed: int = 11) -> np.ndarray:
    """``n`` unit vectors in ``n / 50`` clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 50), DIM)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        noise = 0.5 * rng.standard_normal((m, DIM)).astype(np.float32)
        out[i:i + m] = centres[rng.integers(0, len(centres), m)] + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def run(n: int, queries: int = 300, hnsw_min: int = 10_000) -> dict[str, float | str]:
    """Build and query one index of ``n`` vectors."""
    x = clustered(n)
    rng = np.random.default_rng(5)
    q = x[rng.integers(0, n, queries)] + 0.3 * rng.standard_normal((queries, DIM)).astype(np.float32) / np.sqrt(DIM)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    vi = VectorIndex(DIM, hnsw_min=hnsw_min)
    vi.add(("global", "attack"), np.arange(n), x)
    build = time.perf_counter() - t0
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    group = [("global", "attack")]
    for v in q[:20]:
        vi.search(v, group, 10)
    times, got = [], []
    for v in q:
        t = time.perf_counter()
        res = vi.search(v, group, 10)
        times.append((time.perf_counter() - t) * 1e6)
        got.append({k for k, _ in res})
    recall = []
    for i in range(0, queries, 50):
        sims = q[i:i + 50] @ x.T
        top = np.argpartition(-sims, 10, axis=1)[:, :10]
        recall.extend(len(set(top[j].tolist()) & got[i + j]) / 10 for j in range(len(top)))
    return {"p50_us": round(float(np.percentile(times, 50)), 1), "p99_us": round(float(np.percentile(times, 99)), 1),
            "recall_at_10": round(float(np.mean(recall)), 4), "build_s": round(build, 2), "rss_mb": round(rss, 1),
            "index": vi.kind_of(group[0])}


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    report = {"memory": {str(n): run(n) for n in args.n}}
    print(json.dumps(report, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1), "utf-8")


if __name__ == "__main__":
    main()
