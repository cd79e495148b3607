"""Re-fit the encoder's linear head on CPU (no torch): pooled embeddings per window → logistic regression.

The shipped encoder (``src/aimds/data/models/encoder/model.onnx``) is BERT-6L-384 → mean pool →
linear head (int8). Its backbone stays as it is; this script

1. ``embed``: adds the mean-pooled embedding (``/Div_output_0``) as a second graph output (a copy in
   the work folder, never shipped) and writes, for every window of every text of a JSONL file, the
   pooled embedding (float16) and the current logit;
2. ``fit``: fits a new head by multiple-instance logistic regression (a benign text's windows are
   all negatives; an attack text's positive is its highest-scoring window under the current head,
   re-chosen each round) on train + the generator's rows (``aimds.train.augment.generate``);
3. ``install``: writes the head back into the graph (the int8 head replaced by a float MatMul + Add
   of the same shape: same runtime cost) with a new version string and sha256 in ``meta.json``.

Usage::

    .venv/bin/python scripts/refit_encoder_head.py embed --data ../shared/datasets/train.jsonl --out W/train.npz
    .venv/bin/python scripts/refit_encoder_head.py synth --out W/synth.jsonl
    .venv/bin/python scripts/refit_encoder_head.py embed --data W/synth.jsonl --out W/synth.npz
    .venv/bin/python scripts/refit_encoder_head.py fit --emb W/train.npz W/synth.npz --dev W/dev.npz --out W/head.npz
    .venv/bin/python scripts/refit_encoder_head.py install --head W/head.npz --version enc-minilm-l6-mil-v2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENC = ROOT / "src/aimds/data/models/encoder"
POOLED = "/Div_output_0"
HEAD_OUT = "/head/Gemm_output_0"
DATASETS = ROOT.parent / "shared" / "datasets"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def pooled_model(work: Path) -> Path:
    """A copy of the encoder graph with the pooled embedding as a second output."""
    import onnx

    out = work / "encoder_pooled.onnx"
    if out.is_file():
        return out
    m = onnx.load(str(ENC / "model.onnx"))
    m.graph.output.append(onnx.helper.make_tensor_value_info(POOLED, onnx.TensorProto.FLOAT, ["batch", 384]))
    onnx.save(m, str(out))
    return out


def cmd_embed(args: argparse.Namespace) -> None:
    """Pooled embeddings and logits of every window of every text."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from aimds.detect.encoder import make_windows
    from aimds.normalize import normalize

    meta = json.loads((ENC / "meta.json").read_text("utf-8"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(pooled_model(args.out.parent)), sess_options=opts,
                                providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(ENC / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    rows = load_jsonl(args.data)
    if args.sample < 1.0:  # a deterministic subset: the head has 385 parameters, a few thousand texts suffice
        rows = [r for r in rows if hashlib.sha256(r["text"].encode()).digest()[0] < 256 * args.sample]
    t0 = time.time()
    wins: list[tuple[int, tuple[int, ...]]] = []
    for d, r in enumerate(rows):
        enc = tok.encode(normalize(r["text"]).folded.text, add_special_tokens=False)
        for w in make_windows(enc.ids, enc.offsets, max_len=int(meta["max_len"]), stride=int(meta["stride"]),
                              cls_id=int(meta["cls_id"]), sep_id=int(meta["sep_id"])):
            wins.append((d, w.ids))
    order = sorted(range(len(wins)), key=lambda i: len(wins[i][1]))  # batch windows of similar length
    emb = np.zeros((len(wins), 384), dtype=np.float16)
    logit = np.zeros(len(wins), dtype=np.float32)
    bs = 32
    for b in range(0, len(order), bs):
        idx = order[b : b + bs]
        width = max(len(wins[i][1]) for i in idx)
        ids = np.zeros((len(idx), width), dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for k, i in enumerate(idx):
            ids[k, : len(wins[i][1])] = wins[i][1]
            mask[k, : len(wins[i][1])] = 1
        lg, pooled = sess.run(["logits", POOLED], {"input_ids": ids, "attention_mask": mask})
        emb[idx] = pooled.astype(np.float16)
        logit[idx] = np.asarray(lg).reshape(-1)
        if b // bs % 100 == 0:
            print(f"{b}/{len(order)} windows {time.time() - t0:.0f}s", flush=True)
    np.savez_compressed(args.out, emb=emb, logit=logit, doc=np.asarray([d for d, _ in wins], dtype=np.int32),
                        label=np.asarray([int(r.get("label", 0)) for r in rows], dtype=np.int8),
                        source=np.asarray([str(r.get("source", "")) for r in rows]))
    print(f"{len(rows)} texts, {len(wins)} windows in {time.time() - t0:.0f}s -> {args.out}")


def cmd_synth(args: argparse.Namespace) -> None:
    """The generator's rows (seed 13, label-0 train texts as carriers), as the encoder's training used."""
    from aimds.train.augment import generate

    train = load_jsonl(DATASETS / "train.jsonl")
    rows = generate(13, carriers=[r["text"] for r in train if r["label"] == 0])
    with args.out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows -> {args.out}")


def old_head() -> tuple[np.ndarray, float]:
    """The shipped head, dequantized: weight [384] and bias."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(ENC / "model.onnx"))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    if "head.weight_quantized" in init:
        w = (init["head.weight_quantized"].astype(np.float32) - init["head.weight_zero_point"].astype(np.float32))
        w = w * init["head.weight_scale"].astype(np.float32)
    else:
        w = init["head.weight"].astype(np.float32)
    return w.reshape(-1), float(init["head.bias"].reshape(-1)[0])


def load_emb(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate embedding files: window embeddings, window doc index (global), doc labels, doc sources."""
    embs, docs, labels, sources = [], [], [], []
    off = 0
    for p in paths:
        d = np.load(p)
        embs.append(d["emb"].astype(np.float32))
        docs.append(d["doc"] + off)
        labels.append(d["label"])
        sources.append(d["source"])
        off += len(d["label"])
    return np.concatenate(embs), np.concatenate(docs), np.concatenate(labels), np.concatenate(sources)


def doc_max(z: np.ndarray, doc: np.ndarray, n: int) -> np.ndarray:
    """Per-document maximum of window scores (multiple-instance pooling)."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, doc, z)
    return out


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float = 0.01) -> tuple[float, float]:
    """TPR at the threshold that flags at most ``fpr`` of the negatives; and that threshold."""
    neg = np.sort(scores[labels == 0])
    k = int(np.floor(len(neg) * (1 - fpr)))
    thr = float(neg[min(k, len(neg) - 1)])
    return float((scores[labels == 1] > thr).mean()), thr


def fit_head(x: np.ndarray, doc: np.ndarray, label: np.ndarray, w0: np.ndarray, b0: float, *,
             lam: float, rounds: int = 3, neg_weight: float = 1.0) -> tuple[np.ndarray, float]:
    """Multiple-instance logistic regression, L2-pulled toward the shipped head (w0, b0).

    Negatives: every window of a benign text. Positives: the highest-scoring window of each attack
    text under the current head (re-chosen each round).
    """
    from scipy.optimize import minimize

    n_doc = len(label)
    w, b = w0.copy(), b0
    neg = label[doc] == 0
    for _ in range(rounds):
        z = x @ w + b
        best = np.full(n_doc, -1)
        top = np.full(n_doc, -np.inf)
        for i in np.flatnonzero(~neg):
            if z[i] > top[doc[i]]:
                top[doc[i]], best[doc[i]] = z[i], i
        pos_idx = best[(label == 1) & (best >= 0)]
        idx = np.concatenate([np.flatnonzero(neg), pos_idx])
        y = np.concatenate([np.zeros(int(neg.sum())), np.ones(len(pos_idx))])
        sw = np.where(y == 0, neg_weight, 1.0)
        sw = sw / sw.mean()
        xs = x[idx]

        def loss(theta: np.ndarray, xs: np.ndarray = xs, y: np.ndarray = y,
                 sw: np.ndarray = sw) -> tuple[float, np.ndarray]:
            wv, bv = theta[:-1], theta[-1]
            zz = xs @ wv + bv
            p = 1.0 / (1.0 + np.exp(-zz))
            ll = np.logaddexp(0, zz) - y * zz
            f = float((sw * ll).mean() + lam * ((wv - w0) ** 2).sum())
            g = sw * (p - y) / len(y)
            grad = np.concatenate([xs.T @ g + 2 * lam * (wv - w0), [g.sum()]])
            return f, grad

        res = minimize(loss, np.concatenate([w, [b]]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
        w, b = res.x[:-1].astype(np.float32), float(res.x[-1])
    return w, b


def cmd_fit(args: argparse.Namespace) -> None:
    """Fit heads for a grid of regularisation strengths; report dev and benchmark figures; save the chosen one."""
    x, doc, label, _ = load_emb(args.emb)
    dx, ddoc, dlabel, _ = load_emb([args.dev])
    evals = {p.stem: load_emb([p]) for p in args.eval}
    w0, b0 = old_head()
    results = []
    heads = {"shipped": (w0, b0)}
    for lam in args.lam:
        heads[f"lam={lam}"] = fit_head(x, doc, label, w0, b0, lam=lam, neg_weight=args.neg_weight)
    for name, (w, b) in heads.items():
        ds = doc_max(dx @ w + b, ddoc, len(dlabel))
        tpr, thr = tpr_at_fpr(ds, dlabel, args.fpr)
        row: dict[str, Any] = {"head": name, "dev_tpr": round(tpr, 4), "threshold": round(thr, 3)}
        for ename, (ex, edoc, elabel, _) in evals.items():
            es = doc_max(ex @ w + b, edoc, len(elabel))
            row[ename] = {"benign_flagged": int((es[elabel == 0] > thr).sum()), "n_benign": int((elabel == 0).sum()),
                          "attacks_caught": int((es[elabel == 1] > thr).sum()), "n_attacks": int((elabel == 1).sum())}
        results.append(row)
        print(json.dumps(row))
    if args.save:
        w, b = heads[args.save]
        np.savez(args.out, weight=w.astype(np.float32), bias=np.float32(b), name=args.save)
        print(f"saved {args.save} -> {args.out}")


def cmd_install(args: argparse.Namespace) -> None:
    """Replace the int8 head by the fitted float head (MatMul + Add) and update meta.json."""
    import onnx
    from onnx import helper, numpy_helper

    head = np.load(args.head)
    w, b = head["weight"].astype(np.float32).reshape(384, 1), np.asarray([head["bias"]], dtype=np.float32)
    m = onnx.load(str(ENC / "model.onnx"))
    drop = {"/Div_output_0_QuantizeLinear", "/head/Gemm_MatMul_quant_scales_mul", "/head/Gemm_MatMul_quant",
            "/head/Gemm_output_0_MatMul_output_quantized_cast", "/head/Gemm_MatMul_quant_output_scale_mul",
            "/head/Gemm_Add"}
    names = {n.name for n in m.graph.node}
    if not drop <= names:
        raise SystemExit(f"head nodes not found (missing {sorted(drop - names)}): the graph changed")
    keep = [n for n in m.graph.node if n.name not in drop]
    at = next(i for i, n in enumerate(keep) if n.name == "/Squeeze")
    new = [helper.make_node("MatMul", [POOLED, "head.weight"], ["/head/MatMul_output_0"], name="/head/MatMul"),
           helper.make_node("Add", ["/head/MatMul_output_0", "head.bias"], [HEAD_OUT], name="/head/Add")]
    del m.graph.node[:]
    m.graph.node.extend(keep[:at] + new + keep[at:])
    used = {i for n in m.graph.node for i in n.input}
    inits = [i for i in m.graph.initializer if i.name in used and i.name not in ("head.bias",)]
    inits += [numpy_helper.from_array(w, "head.weight"), numpy_helper.from_array(b, "head.bias")]
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    onnx.checker.check_model(m)
    dst = args.dir or ENC
    dst.mkdir(parents=True, exist_ok=True)
    if dst != ENC:  # a candidate folder: the tokenizer goes with it
        (dst / "tokenizer.json").write_bytes((ENC / "tokenizer.json").read_bytes())
    out = dst / "model.onnx"
    onnx.save(m, str(out))
    meta = json.loads((ENC / "meta.json").read_text("utf-8"))
    prev = meta["version"]
    meta["version"] = args.version
    meta["head_refit"] = {
        "from_version": prev, "script": "scripts/refit_encoder_head.py (fit + install)",
        "head": str(head["name"]), "data": args.note,
        "note": "backbone unchanged; head = multiple-instance logistic regression on pooled window embeddings, "
                "L2-pulled toward the previous head; stored as float MatMul + Add",
    }
    meta["sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()
    meta["size_bytes"] = out.stat().st_size
    (dst / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", "utf-8")
    print(f"installed {args.version}: {meta['size_bytes']} bytes, sha256 {meta['sha256'][:12]}")


def main(argv: list[str] | None = None) -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("embed")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sample", type=float, default=1.0, help="keep this fraction of the rows (by text hash)")
    p.set_defaults(fn=cmd_embed)
    p = sub.add_parser("synth")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(fn=cmd_synth)
    p = sub.add_parser("fit")
    p.add_argument("--emb", type=Path, nargs="+", required=True, help="training embeddings (train, synth)")
    p.add_argument("--dev", type=Path, required=True)
    p.add_argument("--eval", type=Path, nargs="*", default=[], help="extra embeddings to report (benchmarks)")
    p.add_argument("--lam", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2])
    p.add_argument("--neg-weight", type=float, default=1.0)
    p.add_argument("--fpr", type=float, default=0.01)
    p.add_argument("--save", help="name of the head to save, e.g. lam=0.001")
    p.add_argument("--out", type=Path, default=Path("head.npz"))
    p.set_defaults(fn=cmd_fit)
    p = sub.add_parser("install")
    p.add_argument("--head", type=Path, required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--note", default="")
    p.add_argument("--dir", type=Path, help="write a candidate model folder here instead of the shipped one")
    p.set_defaults(fn=cmd_install)
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
