"""Build the sentence-embedding model from the shipped fine-tuned encoder (no torch needed).

The encoder graph (``src/aimds/data/models/encoder/model.onnx``: BERT-6L-384 → mean pool → linear
head, int8) was fine-tuned to separate attacks from benign text, so its top layers collapse every
attack into one region (pooled cosine ≈ 0.99 between unrelated attacks). Its lower layers still
keep what a text *is*: the mean-pooled output of layer ``--layer`` (default 1, i.e. the second
transformer block) separates attack families from each other and from benign text
(``benchmarks/memory_learning.py --compare-layers`` measures every layer). This script cuts the graph
after that layer (``onnx.utils.Extractor``), so the embedding costs about a third of a full encoder
run, and writes it with its ``meta.json`` to ``src/aimds/data/models/embed/``. Output:
``hidden`` [batch, tokens, 384]; the runtime mean-pools it over the attention mask.

Usage: ``.venv/bin/pip install onnx && .venv/bin/python scripts/build_embedder.py [--layer 1]``, then
``scripts/build_embedder.py --encoder-output`` (the encoder graph also returns that layer's state, so a
text the encoder scores needs no second embedding run)
(reproducible: the output depends only on the input model; both sha256 are in meta.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src/aimds/data/models/encoder"
DST = ROOT / "src/aimds/data/models/embed"
HIDDEN = "/layers.{k}/ln2/LayerNormalization_output_0"  # output of transformer block k


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(layer: int, src: Path = SRC, dst: Path = DST) -> dict[str, object]:
    """Cut the encoder after block ``layer``; write model.onnx and meta.json into ``dst``."""
    model = onnx.load(str(src / "model.onnx"))
    name = HIDDEN.format(k=layer)
    if name not in {o for n in model.graph.node for o in n.output}:
        raise SystemExit(f"{name} not found in the encoder graph: the architecture changed")
    sub = onnx.utils.Extractor(model).extract_model(["input_ids", "attention_mask"], [name])
    sub.graph.node.append(onnx.helper.make_node("Identity", [name], ["hidden"], name="hidden_out"))
    del sub.graph.output[:]
    sub.graph.output.append(onnx.helper.make_tensor_value_info("hidden", onnx.TensorProto.FLOAT,
                                                               ["batch", "tokens", 384]))
    onnx.checker.check_model(sub)
    dst.mkdir(parents=True, exist_ok=True)
    out = dst / "model.onnx"
    onnx.save(sub, str(out))
    enc_meta = json.loads((src / "meta.json").read_text("utf-8"))
    meta = {
        "version": f"emb-l{layer}-{enc_meta['version']}",
        "built_from": {"model": "models/encoder/model.onnx", "sha256": sha256(src / "model.onnx"),
                       "version": enc_meta["version"]},
        "build": f"scripts/build_embedder.py --layer {layer} (graph cut after block {layer}; weights unchanged)",
        "layer": layer, "output": "hidden", "pooling": "mean over attention mask, L2-normalised", "dim": 384,
        "tokenizer": "models/encoder/tokenizer.json",
        "max_len": enc_meta["max_len"], "stride": enc_meta["stride"],
        "cls_id": enc_meta.get("cls_id", 101), "sep_id": enc_meta.get("sep_id", 102),
        "pad_id": enc_meta.get("pad_id", 0),
        "preprocessing": enc_meta.get("preprocessing", ""),
        "sha256": sha256(out),
    }
    (dst / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", "utf-8")
    return {"model": str(out), "bytes": out.stat().st_size, "sha256": meta["sha256"]}


def add_encoder_output(src: Path = SRC, emb: Path = DST) -> dict[str, object]:
    """Give the encoder graph a second output ``hidden``: the same block-``layer`` state the embedder returns.

    When the encoder runs on a text's windows, the memory detector mean-pools this output instead of
    running the embedder again (one run serves both). The logits are unchanged; the new output must be
    bit-identical to the embedder's (checked here on a sample window). Idempotent.
    """
    import numpy as np
    import onnxruntime as ort

    emb_meta = json.loads((emb / "meta.json").read_text("utf-8"))
    name = HIDDEN.format(k=int(emb_meta["layer"]))
    path, meta_path = src / "model.onnx", src / "meta.json"
    model = onnx.load(str(path))
    if "hidden" not in {o.name for o in model.graph.output}:
        model.graph.node.append(onnx.helper.make_node("Identity", [name], ["hidden"], name="hidden_out"))
        model.graph.output.append(onnx.helper.make_tensor_value_info("hidden", onnx.TensorProto.FLOAT,
                                                                     ["batch", "tokens", 384]))
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    ids = np.array([[101, *range(2000, 2100), 102]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    a = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["hidden"], feed)[0]
    b = ort.InferenceSession(str(emb / "model.onnx"), providers=["CPUExecutionProvider"]).run(["hidden"], feed)[0]
    if not np.array_equal(a, b):
        raise SystemExit("the encoder's hidden output differs from the embedder's: rebuild the embedder first")
    meta = json.loads(meta_path.read_text("utf-8"))
    meta["outputs"] = ["logits", "hidden"]
    meta["hidden_output"] = {"name": "hidden", "layer": emb_meta["layer"], "embedder": emb_meta["version"],
                             "build": "scripts/build_embedder.py --encoder-output (Identity of the block output)"}
    meta["sha256"] = sha256(path)
    meta["size_bytes"] = path.stat().st_size
    meta_path.write_text(json.dumps(meta, indent=1) + "\n", "utf-8")
    return {"model": str(path), "sha256": meta["sha256"], "embedder": emb_meta["version"]}


def main() -> None:
    """Command line: ``--layer K`` (default 1), ``--out DIR``; ``--encoder-output`` adds the shared output."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer", type=int, default=1, choices=range(6))
    ap.add_argument("--out", type=Path, default=DST)
    ap.add_argument("--encoder-output", action="store_true",
                    help="Add the embedder's hidden state as a second output of the shipped encoder graph.")
    args = ap.parse_args()
    if args.encoder_output:
        print(json.dumps(add_encoder_output(emb=args.out)))
        return
    print(json.dumps(build(args.layer, dst=args.out)))


if __name__ == "__main__":
    main()
