"""Build the attack memory's seed (``src/aimds/data/memory/seed.npz``) from the training attacks.

Every attack row of ``train.jsonl`` is embedded (``aimds.embed``, first 4 windows, pooled). An
attack that is a near-duplicate of a *benign* training text (cosine ≥ ``--filter``, e.g. a BIPIA
document with one sentence inserted, whose embedding is that of the clean document) is dropped: as a
near-duplicate exemplar it would flag the benign original. What is kept is stored as int8 codes with
ids, categories and sources (no raw text). A fresh data directory starts with these exemplars.

Usage: ``.venv/bin/python scripts/build_memory_seed.py [--data ../shared/datasets] [--filter 0.9]``
(deterministic; ~7 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from aimds.embed import Embedder, quantize
from aimds.train.data import default_data_dir, read_jsonl

OUT = Path(__file__).resolve().parent.parent / "src/aimds/data/memory/seed.npz"


def main() -> None:
    """Embed, filter, write."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with train.jsonl")
    ap.add_argument("--filter", type=float, default=0.9, help="drop attacks this close to a benign train text")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rows = read_jsonl((args.data or default_data_dir()) / "train.jsonl")
    attacks = [r for r in rows if int(r["label"]) == 1]
    benign = [r["text"] for r in rows if int(r["label"]) == 0]
    emb = Embedder.load(threads=args.threads, cache_size=0)
    t0 = time.perf_counter()
    a = emb.embed([r["text"] for r in attacks], max_windows=4)
    b = emb.embed(benign, max_windows=2)
    nearest_benign = np.empty(len(a), dtype=np.float32)
    for i in range(0, len(a), 512):
        nearest_benign[i:i + 512] = (a[i:i + 512] @ b.T).max(axis=1)
    keep = np.flatnonzero(nearest_benign < args.filter)
    ids = np.array(["seed_" + hashlib.sha256(attacks[i]["text"].encode("utf-8", "surrogatepass")).hexdigest()[:16]
                    for i in keep])
    _, first = np.unique(ids, return_index=True)
    keep, ids = keep[np.sort(first)], ids[np.sort(first)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, codes=quantize(a[keep]), ids=ids,
        categories=np.array([attacks[i].get("category", "prompt_injection") for i in keep]),
        sources=np.array([attacks[i].get("source", "train") for i in keep]),
        meta=np.array(json.dumps({"model": emb.version, "filter": args.filter, "attacks": len(attacks),
                                  "kept": len(keep), "data": "train.jsonl label 1"})))
    print(json.dumps({"out": str(args.out), "attacks": len(attacks), "kept": len(keep),
                      "seconds": round(time.perf_counter() - t0, 1), "bytes": args.out.stat().st_size}))


if __name__ == "__main__":
    main()
