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

Usage: ``.venv/bin/pip install onnx && .venv/bin/python scripts/build_embedder.py [--layer 1]``
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


def main() -> None:
    """Command line: ``--layer K`` (default 1), ``--out DIR``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layer", type=int, default=1, choices=range(6))
    ap.add_argument("--out", type=Path, default=DST)
    args = ap.parse_args()
    print(json.dumps(build(args.layer, dst=args.out)))


if __name__ == "__main__":
    main()
