#!/usr/bin/env python3
"""Average fine-tuned int8 encoder graphs into one ("model soup"), requantised the same way (CPU, no torch).

Encoders fine-tuned from the same base model on different data (``scripts/train_encoder.py train``) sit close
enough in weight space that their weighted average is itself a good model, often better than each
ingredient (Wortsman et al., 2022, "Model soups"). Each ingredient is a folder with ``model.onnx`` (the
int8 graph ``train`` writes, without the ``hidden`` output ``build_embedder.py --encoder-output`` adds) and
``meta.json``. Every quantised weight is dequantised (``(q - zero_point) * scale``), averaged and
requantised with the ingredient's scheme: symmetric int8 with one scale per output column for the matrix
weights, asymmetric uint8 with one scale for the word embeddings; float tensors (biases, LayerNorm, the
head) are averaged as they are. The graphs must be identical apart from their initialisers. Writes
``--out``/model.onnx and a meta.json (the first ingredient's, with the soup's version, hash and ingredients)
that ``train_encoder.py install --from OUT`` accepts.

    .venv/bin/python scripts/soup_encoders.py out/E4 out/F4 --out out/S1 --version enc-minilm-l6-mil-v4
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

QUANT, SCALE, ZERO = "_quantized", "_scale", "_zero_point"


def _dequantised(inits: dict[str, np.ndarray], base: str) -> np.ndarray:
    """Float weight ``(q - zero_point) * scale`` (scale per tensor or per last axis)."""
    q = inits[base + QUANT].astype(np.float32)
    return (q - inits[base + ZERO].astype(np.float32)) * inits[base + SCALE].astype(np.float32)


def _requantised(w: np.ndarray, q0: np.ndarray, s0: np.ndarray, z0: np.ndarray,
                 qmax: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``w`` quantised like the ingredient tensors ``q0``/``s0``/``z0`` (same dtypes and scale shape)."""
    if q0.dtype == np.int8:
        if np.any(z0):
            raise SystemExit("int8 weights with a non-zero zero point: not the scheme train_encoder.py exports")
        axis = None if s0.size == 1 else tuple(range(w.ndim - 1))
        s = np.abs(w).max(axis=axis) / qmax
        s = np.where(s == 0, 1.0, s).astype(np.float32)
        q = np.clip(np.rint(w / s), -qmax, qmax).astype(np.int8)
        return q, s.reshape(s0.shape), np.zeros_like(z0)
    if q0.dtype == np.uint8 and s0.size == 1:
        lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
        s = (hi - lo) / 255.0 or 1.0
        z = int(np.rint(-lo / s))
        q = np.clip(np.rint(w / s) + z, 0, 255).astype(np.uint8)
        return q, np.full(s0.shape, s, dtype=np.float32), np.full(z0.shape, z, dtype=np.uint8)
    raise SystemExit(f"unsupported quantisation: {q0.dtype} with scale shape {s0.shape}")


def soup(models: list[onnx.ModelProto], weights: np.ndarray) -> onnx.ModelProto:
    """The first model's graph with every initialiser replaced by the weighted average of all models'."""
    graphs = [m.graph for m in models]
    for g in graphs[1:]:
        same = [(n.op_type, list(n.input), list(n.output)) for n in g.node] == \
               [(n.op_type, list(n.input), list(n.output)) for n in graphs[0].node]
        consts = [n.SerializeToString() for n in g.node if n.op_type == "Constant"] == \
                 [n.SerializeToString() for n in graphs[0].node if n.op_type == "Constant"]
        if not (same and consts and [o.name for o in g.output] == [o.name for o in graphs[0].output]):
            raise SystemExit("the ingredients' graphs differ (use the models train_encoder.py train writes)")
    inits = [{i.name: numpy_helper.to_array(i) for i in g.initializer} for g in graphs]
    shapes = {k: (v.shape, v.dtype) for k, v in inits[0].items()}
    if any({k: (v.shape, v.dtype) for k, v in d.items()} != shapes for d in inits[1:]):
        raise SystemExit("the ingredients' initialisers differ (names, shapes or types)")
    new: dict[str, np.ndarray] = {}
    for name, a in inits[0].items():
        if name.endswith(QUANT):
            base = name[: -len(QUANT)]
            w = sum(float(k) * _dequantised(d, base) for k, d in zip(weights, inits, strict=True))
            qmax = max(int(np.abs(d[name].astype(np.int32)).max()) for d in inits) if a.dtype == np.int8 else 255
            new[name], new[base + SCALE], new[base + ZERO] = _requantised(
                np.asarray(w, dtype=np.float32), a, inits[0][base + SCALE], inits[0][base + ZERO], qmax)
    for name, a in inits[0].items():
        if name in new:
            continue
        if a.dtype == np.float32:
            new[name] = np.asarray(sum(float(k) * d[name] for k, d in zip(weights, inits, strict=True)),
                                   dtype=np.float32).reshape(a.shape)
        elif all(np.array_equal(a, d[name]) for d in inits[1:]):
            new[name] = a
        else:
            raise SystemExit(f"initialiser {name} ({a.dtype}) differs between ingredients and is not a weight")
    out = onnx.ModelProto()
    out.CopyFrom(models[0])
    fresh = [numpy_helper.from_array(new[i.name], i.name) for i in out.graph.initializer]
    del out.graph.initializer[:]
    out.graph.initializer.extend(fresh)
    return out


def main(argv: list[str] | None = None) -> None:
    """Write the soup and its meta.json; print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ingredients", nargs="+", type=Path, help="folders with model.onnx and meta.json")
    ap.add_argument("--weights", type=float, nargs="+", help="one per ingredient (default: equal)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--version", required=True, help="version string for meta.json")
    args = ap.parse_args(argv)
    if len(args.ingredients) < 2:
        ap.error("a soup needs two ingredients or more")
    weights = np.asarray(args.weights or [1.0] * len(args.ingredients), dtype=np.float64)
    if len(weights) != len(args.ingredients) or np.any(weights < 0) or weights.sum() <= 0:
        ap.error("--weights: one non-negative weight per ingredient")
    weights = weights / weights.sum()
    metas = [json.loads((p / "meta.json").read_text(encoding="utf-8")) for p in args.ingredients]
    models = []
    for p, m in zip(args.ingredients, metas, strict=True):
        raw = (p / "model.onnx").read_bytes()
        if m.get("sha256") and hashlib.sha256(raw).hexdigest() != m["sha256"]:
            raise SystemExit(f"{p}/model.onnx does not match its meta.json sha256")
        models.append(onnx.load_from_string(raw))
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "model.onnx"
    onnx.save(soup(models, weights), target)
    data = target.read_bytes()
    meta: dict[str, Any] = dict(metas[0])
    meta.pop("metrics", None)  # the ingredients' dev figures do not describe the soup
    meta.pop("training", None)  # each ingredient's recipe is under "soup"
    meta.update({
        "version": args.version,
        "quantization": metas[0].get("quantization", "") + "; soup: dequantised, averaged, requantised"
                        " (scripts/soup_encoders.py)",
        "soup": [{"version": m.get("version"), "sha256": m.get("sha256"), "weight": round(float(k), 6),
                  "synthetic": (m.get("training") or {}).get("data", {}).get("synthetic"),
                  "selected": (m.get("training") or {}).get("selected"),
                  "datasets_sha256": (m.get("training") or {}).get("datasets_sha256")}
                 for m, k in zip(metas, weights, strict=True)],
        "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
    })
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(json.dumps({"out": str(target), "sha256": meta["sha256"], "weights": [round(float(k), 4) for k in weights],
                      "ingredients": [str(p) for p in args.ingredients]}))


if __name__ == "__main__":
    main()
