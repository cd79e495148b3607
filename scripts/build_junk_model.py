"""Build the junk-token model (``src/aimds/data/models/junk/trigrams.npz``) from benign training text.

Counts the character trigrams of every ASCII letter word (lower-cased, with boundary marks) in the
*benign* rows of ``train.jsonl`` — English, German, Spanish, Romanian, Turkish, Vietnamese and other
Latin-script paragraphs, questions, emails, tables and code — and stores add-``k`` smoothed
log2-probabilities as float16. The word threshold is the ``--quantile`` of the scores of the
benign words of three or more letters (default: the lowest 0.5 % count as junk), so ordinary
language stays language. Deterministic; a few seconds.

Usage: ``.venv/bin/python scripts/build_junk_model.py [--data ../shared/datasets]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np

from aimds.detect.junk import ALPHABET, JunkModel
from aimds.train.data import default_data_dir, read_jsonl

OUT = Path(__file__).resolve().parent.parent / "src/aimds/data/models/junk/trigrams.npz"
_WORD = re.compile(r"[a-z]+")


def main() -> None:
    """Count, smooth, pick the threshold, write."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with train.jsonl")
    ap.add_argument("--smoothing", type=float, default=0.1, help="add-k smoothing of the trigram counts")
    ap.add_argument("--quantile", type=float, default=0.005, help="share of benign words to call junk")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    path = (args.data or default_data_dir()) / "train.jsonl"
    rows = [r for r in read_jsonl(path) if int(r["label"]) == 0]
    ix = {c: i for i, c in enumerate(ALPHABET)}
    k = len(ALPHABET)
    counts = np.zeros((k, k, k), dtype=np.float64)
    words: list[str] = []
    for r in rows:
        for w in _WORD.findall(r["text"].lower()):
            s = "^^" + w + "$"
            for i in range(2, len(s)):
                counts[ix[s[i - 2]], ix[s[i - 1]], ix[s[i]]] += 1
            if len(w) >= 3:
                words.append(w)
    logp = np.log2((counts + args.smoothing) / (counts.sum(axis=2, keepdims=True) + args.smoothing * k))
    logp16 = logp.astype(np.float16)
    scores = JunkModel(logp16.astype(np.float32), 0.0, {}).word_scores(words)
    threshold = float(np.quantile(scores, args.quantile))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    meta = {"threshold": round(threshold, 4), "quantile": args.quantile, "smoothing": args.smoothing,
            "words": len(words), "rows": len(rows), "data": f"train.jsonl label 0 (sha256 {digest})"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, logp=logp16, meta=np.array(json.dumps(meta)))
    print(json.dumps({"out": str(args.out), "bytes": args.out.stat().st_size, **meta}))


if __name__ == "__main__":
    main()
