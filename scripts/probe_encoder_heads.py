"""Probe: can a new head on the frozen encoder cut false positives on benign requests without losing dev TPR?

Embeds every window with the mean-pooled outputs of blocks 2, 3, 4 and the final pooled vector
(one pass of a copy of the shipped graph with extra outputs; nothing shipped changes), then fits
heads on train + the generator's rows (multiple-instance positives: each attack's highest window
under the shipped head) and prints, per head, the encoder-alone dev TPR at 1 % dev FPR and, at
that threshold, the benign requests flagged / attacks caught on ``benchmarks/data/benign_requests.jsonl``
and on the benign/attack items of ``benchmarks/data/load_texts.json``; last, which dev attacks the
strongest correction loses, by source.

    .venv/bin/python scripts/probe_encoder_heads.py --work /tmp/probe     # ~10 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENC = ROOT / "src/aimds/data/models/encoder"
DATASETS = ROOT.parent / "shared" / "datasets"
LAYERS = (2, 3, 4)
BLOCKS = {"L2": slice(0, 384), "L3": slice(384, 768), "L4": slice(768, 1152), "F": slice(1152, 1536)}

_spec = importlib.util.spec_from_file_location("refit", ROOT / "scripts" / "refit_encoder_head.py")
assert _spec is not None and _spec.loader is not None
refit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(refit)


def embed(rows: list[dict[str, Any]], out: Path, work: Path) -> None:
    """Pooled block-2/3/4 and final embeddings (float16) and shipped logits of every window."""
    import onnx
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from aimds.detect.encoder import make_windows
    from aimds.normalize import normalize

    model = work / "encoder_layers.onnx"
    names = ["logits", *(f"/layers.{k}/ln2/LayerNormalization_output_0" for k in LAYERS), refit.POOLED]
    if not model.is_file():
        m = onnx.load(str(ENC / "model.onnx"))
        for n in names[1:-1]:
            m.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["b", "t", 384]))
        m.graph.output.append(onnx.helper.make_tensor_value_info(refit.POOLED, onnx.TensorProto.FLOAT, ["b", 384]))
        onnx.save(m, str(model))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(ENC / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    wins: list[tuple[int, tuple[int, ...]]] = []
    for d, r in enumerate(rows):
        e = tok.encode(normalize(r["text"]).folded.text, add_special_tokens=False)
        wins += [(d, w.ids) for w in make_windows(e.ids, e.offsets, max_len=256, stride=192, cls_id=101, sep_id=102)]
    order = sorted(range(len(wins)), key=lambda i: len(wins[i][1]))
    emb = np.zeros((len(wins), 384 * (len(LAYERS) + 1)), dtype=np.float16)
    logit = np.zeros(len(wins), dtype=np.float32)
    for b in range(0, len(order), 32):
        idx = order[b : b + 32]
        width = max(len(wins[i][1]) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for k, i in enumerate(idx):
            ids[k, : len(wins[i][1])] = wins[i][1]
            mask[k, : len(wins[i][1])] = 1
        res = sess.run(names, {"input_ids": ids, "attention_mask": mask})
        mf = mask[:, :, None].astype(np.float32)
        pooled = [(h * mf).sum(1) / np.clip(mf.sum(1), 1e-9, None) for h in res[1:-1]] + [res[-1]]
        emb[idx] = np.concatenate(pooled, 1).astype(np.float16)
        logit[idx] = np.asarray(res[0]).reshape(-1)
    np.savez(out, emb=emb, logit=logit, doc=np.asarray([d for d, _ in wins], dtype=np.int32),
             label=np.asarray([int(r.get("label", 0)) for r in rows], dtype=np.int8),
             source=np.asarray([str(r.get("source", r.get("style", ""))) for r in rows]))


def datasets(work: Path) -> dict[str, Path]:
    """Embed train, the generator's rows, dev and the two benchmarks (cached in ``work``)."""
    from aimds.train.augment import generate

    train = refit.load_jsonl(DATASETS / "train.jsonl")
    load = json.loads((ROOT / "benchmarks/data/load_texts.json").read_text("utf-8"))["items"]
    sets = {
        "train": train,
        "synth": generate(13, carriers=[r["text"] for r in train if r["label"] == 0]),
        "dev": refit.load_jsonl(DATASETS / "dev.jsonl"),
        "bench": refit.load_jsonl(ROOT / "benchmarks/data/benign_requests.jsonl"),
        "load": [{"text": it["text"], "label": int(it["label"] != "benign")} for it in load],
    }
    out = {}
    for name, rows in sets.items():
        key = hashlib.sha256("".join(r["text"] for r in rows).encode()).hexdigest()[:12]
        path = work / f"{name}-{key}.npz"
        if not path.is_file():
            t0 = time.time()
            embed(rows, path, work)
            print(f"embedded {name}: {len(rows)} texts in {time.time() - t0:.0f}s", flush=True)
        out[name] = path
    return out


def main() -> None:
    """Command line."""
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    paths = datasets(args.work)
    data = {k: np.load(p) for k, p in paths.items()}
    x = np.concatenate([data["train"]["emb"], data["synth"]["emb"]]).astype(np.float32)
    doc = np.concatenate([data["train"]["doc"], data["synth"]["doc"] + len(data["train"]["label"])])
    label = np.concatenate([data["train"]["label"], data["synth"]["label"]])
    w0, b0 = refit.old_head()
    z = x[:, BLOCKS["F"]] @ w0 + b0
    neg = label[doc] == 0
    best = {}
    for i in np.flatnonzero(~neg):
        if doc[i] not in best or z[i] > z[best[doc[i]]]:
            best[doc[i]] = i
    idx = np.concatenate([np.flatnonzero(neg), np.asarray(sorted(best.values()))])
    y = np.concatenate([np.zeros(int(neg.sum())), np.ones(len(best))])

    def evaluate(name: str, f: Any) -> np.ndarray:
        d = data["dev"]
        ds = refit.doc_max(f(d["emb"].astype(np.float32)), d["doc"], len(d["label"]))
        tpr, thr = refit.tpr_at_fpr(ds, d["label"])
        row: dict[str, Any] = {"head": name, "dev_tpr_at_1pct_fpr": round(tpr, 4)}
        for k in ("bench", "load"):
            e = data[k]
            es = refit.doc_max(f(e["emb"].astype(np.float32)), e["doc"], len(e["label"]))
            row[k] = {"benign_flagged": f"{int((es[e['label'] == 0] > thr).sum())}/{int((e['label'] == 0).sum())}",
                      "attacks_caught": f"{int((es[e['label'] == 1] > thr).sum())}/{int((e['label'] == 1).sum())}"}
        print(json.dumps(row), flush=True)
        return ds > thr

    shipped = evaluate("shipped", lambda a: a[:, BLOCKS["F"]] @ w0 + b0)
    last = shipped
    for feats in (["F"], ["L4", "F"], ["L2", "L3", "L4", "F"]):  # free heads
        cols = np.concatenate([np.arange(1536)[BLOCKS[b]] for b in feats])
        mu, sd = x[idx][:, cols].mean(0), x[idx][:, cols].std(0) + 1e-6
        lr = LogisticRegression(C=0.1, max_iter=3000).fit((x[idx][:, cols] - mu) / sd, y)
        evaluate(f"free {'+'.join(feats)} C=0.1", lambda a, lr=lr, cols=cols, mu=mu, sd=sd:
                 lr.decision_function((a[:, cols] - mu) / sd))
    cols = np.arange(1536)[BLOCKS["L4"]]
    mu, sd = x[idx][:, cols].mean(0), x[idx][:, cols].std(0) + 1e-6
    for c in (0.001, 0.003, 0.01, 0.03):  # shipped logit + a penalised correction from block 4
        feats = np.concatenate([z[idx, None] * 10, (x[idx][:, cols] - mu) / sd], 1)
        lr = LogisticRegression(C=c, max_iter=3000).fit(feats, y)
        last = evaluate(f"shipped+L4 correction C={c}", lambda a, lr=lr: lr.decision_function(np.concatenate(
            [(a[:, BLOCKS["F"]] @ w0 + b0)[:, None] * 10, (a[:, cols] - mu) / sd], 1)))
    dev = data["dev"]
    lost = Counter(str(dev["source"][i]) for i in np.flatnonzero((dev["label"] == 1) & shipped & ~last))
    print(json.dumps({"dev_attacks_lost_by_last_head": dict(lost)}))


if __name__ == "__main__":
    main()
