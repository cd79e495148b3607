"""Could a small distilled model decide, cheaper than the transformer, which texts it need not read?

The default pipeline meets its accuracy with the transformer, which costs 20-30 ms per 1,000 characters on
two cores and runs on ~73 % of the bench's 1,000-character texts (the n-gram model cannot clear a request
followed by a document). This benchmark trains a student on the shipped transformer and measures it as the
missing cheap stage. Nothing here ships: it measures an option.

Student (numpy, seed 13): the WordPiece ids the transformer reads -> the transformer's own word embeddings
(dequantised from the ONNX graph, PCA to 64 dimensions, frozen) -> one convolution over 3 tokens with 256
filters and ReLU -> max over the whole text -> linear. It is fitted to the teacher's window logits (squared
error) and the labels (log loss), half each, on the training corpus ``aimds train`` uses (``train.jsonl``
plus the synthetic rows).

Reported (JSON):
- ``dev_auc``: row-level AUC on ``dev.jsonl`` of the teacher, the n-gram model and the student;
- ``oof_tpr_at_1pct``: out-of-fold TPR at 1 % FPR (logistic fusion, 5 folds) of the n-gram model alone and
  with the student beside it (what the fast profile could gain);
- ``gate``: for each student logit g, the default pipeline's dev TP / FP if the transformer were skipped
  where the student scores under g (exact: every dev row is scanned once as shipped and once with the
  transformer skipped), and how many rows would skip it;
- ``bench_1000``: the share of 1,000-character bench texts that would still reach the transformer per g;
- ``student_cost_us``: the student's own cost per 1,000-character text (WordPiece tokenisation of the folded view,
  scoring), p50 / p99.

    .venv/bin/python benchmarks/distilled_gate.py [--json OUT] [--cache DIR]

About 15 minutes on two cores, most of it the teacher over ~23,000 training windows (cached in ``--cache``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aimds import Guard
from aimds.detect.encoder import DEFAULT_MODEL_DIR, EncoderModel
from aimds.eval.bench import bench_texts
from aimds.normalize import normalize
from aimds.train.classifier import TrainConfig, build_corpus
from aimds.train.data import default_data_dir, read_jsonl

GATES = (-6.0, -5.0, -4.0, -3.0, -2.0, -1.0)
KERNEL = 3


def teacher_windows(model: EncoderModel, texts: Sequence[str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Every model window of ``texts`` (token ids), the row it belongs to and the teacher's logit."""
    wins, rows = [], []
    for k, text in enumerate(texts):
        for w in model.windows(normalize(text).folded.text):
            wins.append(w)
            rows.append(k)
    order = np.argsort([len(w.ids) for w in wins], kind="stable")  # similar lengths batch with little padding
    logits = np.zeros(len(wins), dtype=np.float32)
    for b in range(0, len(order), 512):
        idx = order[b : b + 512]
        p = np.clip(np.array(model.score_windows([wins[i] for i in idx]), dtype=np.float64), 1e-12, 1 - 1e-12)
        logits[idx] = np.log(p / (1 - p))
    return [np.array(w.ids, dtype=np.int64) for w in wins], np.array(rows), logits


def cached_teacher(model: EncoderModel, texts: Sequence[str], path: Path) -> tuple[list[np.ndarray], np.ndarray,
                                                                                  np.ndarray]:
    """:func:`teacher_windows`, read from ``path`` when it holds this text list's results."""
    key = hashlib.sha256("\x00".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
    if path.exists():
        z = np.load(path)
        if str(z["key"]) == key:
            off = np.r_[0, np.cumsum(z["lens"])]
            flat = z["flat"]
            return [flat[off[i] : off[i + 1]] for i in range(len(off) - 1)], z["rows"], z["logits"]
    ids, rows, logits = teacher_windows(model, texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, key=key, flat=np.concatenate(ids), lens=np.array([len(a) for a in ids]), rows=rows, logits=logits)
    return ids, rows, logits


def word_embeddings(model_dir: Path, dims: int) -> np.ndarray:
    """The transformer's word-embedding table, dequantised and reduced to ``dims`` by PCA (row 0, padding, zero)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_dir / "model.onnx")).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name.startswith("word.weight")}
    table = (init["word.weight_quantized"].astype(np.float32) - float(init["word.weight_zero_point"])) \
        * float(init["word.weight_scale"])
    centred = table - table.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = (centred @ vt[:dims].T).astype(np.float32)
    out /= out.std()
    out[0] = 0.0
    return out


class Student:
    """Frozen embeddings -> conv(3 tokens) -> ReLU -> max over the text -> linear; numpy forward and backward."""

    def __init__(self, emb: np.ndarray, filters: int = 256, seed: int = 13) -> None:
        rng = np.random.default_rng(seed)
        self.emb = emb
        fan_in = KERNEL * emb.shape[1]
        self.w = (rng.standard_normal((fan_in, filters)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.b = np.zeros(filters, dtype=np.float32)
        self.v = (rng.standard_normal(filters) * 0.01).astype(np.float32)
        self.c = np.zeros(1, dtype=np.float32)
        self.rng = rng

    def _unfold(self, batch: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(a) for a in batch)
        ids = np.zeros((len(batch), width + KERNEL - 1), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=bool)
        for i, a in enumerate(batch):
            ids[i, 1 : 1 + len(a)] = a
            mask[i, : len(a)] = True
        e = self.emb[ids]
        return np.concatenate([e[:, j : j + width] for j in range(KERNEL)], axis=2), mask

    def _forward(self, u: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z = u @ self.w + self.b
        z[~mask] = -1e9
        idx = z.argmax(1)
        h = np.maximum(np.take_along_axis(z, idx[:, None, :], 1)[:, 0], 0)
        return h @ self.v + self.c[0], h, idx

    def loss_and_grads(self, batch: Sequence[np.ndarray], target: np.ndarray, labels: np.ndarray
                       ) -> tuple[float, list[np.ndarray]]:
        """Mean of 0.5 x squared error to ``target`` / 16 + 0.5 x log loss on ``labels``, and its gradients
        with respect to ``w``, ``b``, ``v``, ``c`` (the gradient reaches only each filter's maximum)."""
        u, mask = self._unfold(batch)
        out, h, idx = self._forward(u, mask)
        p = 1 / (1 + np.exp(-out))
        n = len(batch)
        loss = float(np.mean(0.5 * (out - target) ** 2 / 16.0
                             - 0.5 * (labels * np.log(p + 1e-12) + (1 - labels) * np.log(1 - p + 1e-12))))
        g = (0.5 * (out - target) / 8.0 + 0.5 * (p - labels)) / n
        dh = np.outer(g, self.v) * (h > 0)
        picked = u[np.arange(n)[:, None], idx]  # the input at each filter's maximum
        return loss, [np.einsum("bfd,bf->df", picked, dh), dh.sum(0), h.T @ g, np.array([g.sum()], dtype=np.float32)]

    def fit(self, ids: Sequence[np.ndarray], target: np.ndarray, labels: np.ndarray, epochs: int = 10,
            batch: int = 64, lr: float = 2e-3) -> None:
        """Adam on :meth:`loss_and_grads` (teacher logits clipped to ±8), learning rate x 0.7 per epoch."""
        params = [self.w, self.b, self.v, self.c]
        m1 = [np.zeros_like(p) for p in params]
        m2 = [np.zeros_like(p) for p in params]
        order = np.argsort([len(a) for a in ids], kind="stable")
        batches = [order[s : s + batch] for s in range(0, len(order), batch)]
        y = np.clip(target, -8, 8)
        step = 0
        for _ in range(epochs):
            self.rng.shuffle(batches)  # type: ignore[arg-type]
            for sel in batches:
                _, grads = self.loss_and_grads([ids[i] for i in sel], y[sel], labels[sel])
                grads[0] = grads[0] + 1e-5 * self.w
                step += 1
                for k, (param, grad) in enumerate(zip(params, grads, strict=True)):
                    m1[k] = 0.9 * m1[k] + 0.1 * grad
                    m2[k] = 0.999 * m2[k] + 0.001 * grad * grad
                    param -= lr * (m1[k] / (1 - 0.9**step)) / (np.sqrt(m2[k] / (1 - 0.999**step)) + 1e-8)
            lr *= 0.7

    def predict(self, ids: Sequence[np.ndarray], batch: int = 256) -> np.ndarray:
        """Student logit per id sequence."""
        out = np.zeros(len(ids), dtype=np.float32)
        order = np.argsort([len(a) for a in ids], kind="stable")
        for s in range(0, len(order), batch):
            sel = order[s : s + batch]
            out[sel] = self._forward(*self._unfold([ids[i] for i in sel]))[0]
        return out


def row_max(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per row, the largest value of its windows."""
    out = np.full(n, -1e9)
    np.maximum.at(out, rows, values)
    return out


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    from scipy.stats import rankdata

    r = rankdata(scores)
    pos = y == 1
    return float((r[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum()))


def tpr_at(scores: np.ndarray, y: np.ndarray, fpr: float) -> float:
    """TPR at the threshold that flags ``fpr`` of the benign rows."""
    return float((scores[y == 1] > np.quantile(scores[y == 0], 1 - fpr)).mean())


def dev_runs(rows: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per dev row: flagged as shipped, whether the transformer ran, flagged with it skipped, n-gram score."""
    guard = Guard().load()
    enc = next(d for d in guard.detectors if d.name == "encoder")
    shipped, ran = [], []
    for r in rows:
        v = guard.scan(r["text"])
        shipped.append(v.flagged)
        ran.append("encoder" in v.latency_us)
    lin: list[float] = []

    def skip(context: Any) -> bool:  # the gate closed: record what the classifier said, run nothing
        lin.append(float(context.scores.get("classifier", 0.5)))
        return False

    enc.wants = skip  # type: ignore[method-assign]
    skipped = []
    for r in rows:
        n = len(lin)
        skipped.append(guard.scan(r["text"]).flagged)
        if len(lin) == n:  # decided before the cascade (e.g. refused): no classifier score
            lin.append(0.5)
    return {"shipped": np.array(shipped), "ran": np.array(ran), "skipped": np.array(skipped), "lin": np.array(lin)}


def main() -> None:
    """Train the student, then print (and with --json write) the report described in the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "aimds-distilled-gate")
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    t0 = time.time()
    model = EncoderModel.load(threads=2, batch_size=32)
    data = default_data_dir()
    train = build_corpus(data, TrainConfig(), log=lambda _: None)
    dev = read_jsonl(data / "dev.jsonl")
    tr_ids, tr_rows, tr_logits = cached_teacher(model, [r["text"] for r in train], args.cache / "train.npz")
    dv_ids, dv_rows, dv_logits = cached_teacher(model, [r["text"] for r in dev], args.cache / "dev.npz")
    tr_labels = np.array([int(train[k]["label"]) for k in tr_rows])
    student = Student(word_embeddings(DEFAULT_MODEL_DIR, 64))
    student.fit(tr_ids, tr_logits, tr_labels, epochs=args.epochs)
    y = np.array([int(r["label"]) for r in dev])
    s = row_max(student.predict(dv_ids), dv_rows, len(dev))
    teacher = row_max(dv_logits, dv_rows, len(dev))
    runs = dev_runs(dev)
    lin = np.log(np.clip(runs["lin"], 1e-6, 1 - 1e-6) / (1 - np.clip(runs["lin"], 1e-6, 1 - 1e-6)))
    report: dict[str, Any] = {"dev_auc": {"teacher": round(auc(teacher, y), 4), "ngram": round(auc(lin, y), 4),
                                          "student": round(auc(s, y), 4)}}
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    report["oof_tpr_at_1pct"] = {
        name: round(tpr_at(cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=folds,
                                             method="decision_function"), y, 0.01), 4)
        for name, x in (("ngram", lin[:, None]), ("ngram+student", np.c_[lin, s]))}
    shipped, ran, skipped = runs["shipped"], runs["ran"], runs["skipped"]
    report["gate"] = {"shipped": {"tp": int(shipped[y == 1].sum()), "fp": int(shipped[y == 0].sum()),
                                  "transformer_ran_benign": int(ran[y == 0].sum()),
                                  "transformer_ran_attack": int(ran[y == 1].sum())}}
    for g in GATES:
        gated = ran & (s < g)
        out = np.where(gated, skipped, shipped)
        report["gate"][str(g)] = {"tp": int(out[y == 1].sum()), "fp": int(out[y == 0].sum()),
                                  "skip_benign": int(gated[y == 0].sum()), "skip_attack": int(gated[y == 1].sum())}
    guard = Guard().load()
    texts = bench_texts(1000, 400)
    bench_ran, bench_s, tok_us, score_us = [], [], [], []
    for t in texts:
        bench_ran.append("encoder" in guard.scan(t).latency_us)
        folded = normalize(t).folded.text  # the pipeline has the views already: not the student's cost
        a = time.perf_counter()
        enc = model._tokenizer.encode(folded, add_special_tokens=False)  # what the stage would pay
        b = time.perf_counter()
        bench_s.append(float(student.predict([np.array([101, *enc.ids, 102], dtype=np.int64)])[0]))
        tok_us.append((b - a) * 1e6)
        score_us.append((time.perf_counter() - b) * 1e6)
    br, bs = np.array(bench_ran), np.array(bench_s)
    report["bench_1000"] = {"transformer_ran": round(float(br.mean()), 3),
                            **{str(g): round(float((br & (bs >= g)).mean()), 3) for g in GATES}}
    report["student_cost_us"] = {"tokenise": [round(float(np.percentile(tok_us, q))) for q in (50, 99)],
                                 "score": [round(float(np.percentile(score_us, q))) for q in (50, 99)]}
    report["seconds"] = round(time.time() - t0)
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
