#!/usr/bin/env python3
"""Compare int8 encoder ONNX models on the prepared dev documents and the benign guard turns (CPU, no torch).

For each model: dev TPR and FPR at the threshold that gives 1 % FPR on dev, dev AUC, and the share of the
selection-only guard set (benign turns of the multi-turn *tune* split, written by ``train_encoder.py prepare``)
scored above that threshold — the short-turn over-confidence that kept v2 from shipping. Scores are the max
window logit per document, exactly as ``train_encoder.py`` reports them.

    .venv/bin/python scripts/compare_encoders.py --work .dev/enc_next \
        src/aimds/data/models/encoder/model.onnx out/E4/model.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_encoder import DEV, GUARD, WORK, Data, report


def window_logits(session: ort.InferenceSession, data: Data, wins: list[int], batch: int = 64) -> dict[int, float]:
    """Logit of each window (windows sorted by length so that batches pad little)."""
    out: dict[int, float] = {}
    for b in range(0, len(wins), batch):
        chunk = wins[b : b + batch]
        width = max(int(data.win_start[w + 1] - data.win_start[w]) for w in chunk)
        ids = np.zeros((len(chunk), width), np.int64)
        mask = np.zeros_like(ids)
        for i, w in enumerate(chunk):
            t = data.window_ids(w)
            ids[i, : len(t)] = t
            mask[i, : len(t)] = 1
        logits = session.run(None, {"input_ids": ids, "attention_mask": mask})[0].reshape(-1)
        out.update(zip(chunk, logits.tolist(), strict=True))
    return out


def main(argv: list[str] | None = None) -> None:
    """Print one JSON line per model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="int8 encoder model.onnx files")
    ap.add_argument("--work", type=Path, default=WORK, help="prepared data folder (train_encoder.py prepare)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    data = Data(args.work)
    dev, guard = data.docs(DEV), data.docs(GUARD)
    wins = sorted({w for d in np.concatenate([dev, guard]) for w in data.doc_windows[d]},
                  key=lambda w: data.win_start[w + 1] - data.win_start[w])
    for path in args.models:
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        logit = window_logits(ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]), data, wins)
        def doc_scores(docs: np.ndarray, logit: dict[int, float] = logit) -> np.ndarray:
            return np.asarray([max(logit[w] for w in data.doc_windows[d]) for d in docs])
        rep = report(doc_scores(dev), data.label[dev].astype(np.int64), data.sources(dev))
        g = doc_scores(guard)
        print(json.dumps({"model": str(path), "dev_tpr": rep["tpr"], "dev_fpr": rep["fpr"], "dev_auc": rep["auc"],
                          "guard_n": len(guard),
                          "guard_flagged": round(float((g > rep["threshold"]).mean()), 4) if len(g) else None}),
              flush=True)


if __name__ == "__main__":
    main()
