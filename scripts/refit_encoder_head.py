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
    args = ap.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
