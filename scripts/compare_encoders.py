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
from train_encoder import DEV, GUARD, WORK, Data, onnx_window_logits, report


def main(argv: list[str] | None = None) -> None:
    """Print one JSON line per model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="int8 encoder model.onnx files")
    ap.add_argument("--work", type=Path, default=WORK, help="prepared data folder (train_encoder.py prepare)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    data = Data(args.work)
    dev, guard = data.docs(DEV), data.docs(GUARD)
    pad_id = int(data.summary["pad_id"])
    for path in args.models:
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def doc_scores(docs: np.ndarray, session: ort.InferenceSession = session) -> np.ndarray:
            return np.asarray([onnx_window_logits(session, data, list(data.doc_windows[d]), pad_id).max()
                               for d in docs])
        rep = report(doc_scores(dev), data.label[dev].astype(np.int64), data.sources(dev))
        g = doc_scores(guard)
        print(json.dumps({"model": str(path), "dev_tpr": rep["tpr"], "dev_fpr": rep["fpr"], "dev_auc": rep["auc"],
                          "guard_n": len(guard),
                          "guard_flagged": round(float((g > rep["threshold"]).mean()), 4) if len(g) else None}),
              flush=True)


if __name__ == "__main__":
    main()
