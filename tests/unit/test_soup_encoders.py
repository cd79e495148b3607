"""``scripts/soup_encoders.py`` on small graphs quantised the way the shipped encoder is (dynamic int8, per channel)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from tests.helpers import load_file_module  # noqa: E402

VOCAB, DIM, OUT = 50, 16, 8


def _script() -> ModuleType:
    return load_file_module("scripts/soup_encoders.py", "soup_encoders")


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"word.weight": rng.normal(size=(VOCAB, DIM)).astype(np.float32),
            "dense.weight": rng.normal(size=(DIM, OUT)).astype(np.float32),
            "dense.bias": rng.normal(size=(OUT,)).astype(np.float32),
            "ln.weight": (1 + 0.1 * rng.normal(size=(OUT,))).astype(np.float32),
            "ln.bias": (0.1 * rng.normal(size=(OUT,))).astype(np.float32)}


def _graph(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """Embedding lookup -> dense -> LayerNorm: the op kinds of the encoder that quantisation touches."""
    nodes = [helper.make_node("Gather", ["word.weight", "input_ids"], ["emb"]),
             helper.make_node("MatMul", ["emb", "dense.weight"], ["mm"]),
             helper.make_node("Add", ["mm", "dense.bias"], ["pre"]),
             helper.make_node("LayerNormalization", ["pre", "ln.weight", "ln.bias"], ["logits"], axis=-1)]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", OUT])],
        [numpy_helper.from_array(v, k) for k, v in w.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _quantised(tmp: Path, name: str, w: dict[str, np.ndarray]) -> Path:
    """A folder like ``train_encoder.py train`` writes: int8 model.onnx and meta.json with its hash."""
    folder = tmp / name
    folder.mkdir()
    onnx.save(_graph(w), folder / "fp32.onnx")
    quantization.quantize_dynamic(str(folder / "fp32.onnx"), str(folder / "model.onnx"), per_channel=True,
                                  weight_type=quantization.QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    digest = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps({"version": name, "max_len": 256, "stride": 192, "sha256": digest,
                                                  "training": {"data": {"synthetic": {"synth:x|0": 1}}},
                                                  "metrics": {"dev": 1}}))
    return folder


def _run(path: Path | bytes, ids: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(path if isinstance(path, bytes) else str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input_ids": ids})[0]


IDS = np.arange(VOCAB, dtype=np.int64).reshape(5, 10)


def test_even_soup_matches_the_averaged_float_model(tmp_path: Path) -> None:
    wa, wb = _weights(1), _weights(2)
    a, b = _quantised(tmp_path, "a", wa), _quantised(tmp_path, "b", wb)
    assert any(n.op_type == "MatMulInteger" for n in onnx.load(a / "model.onnx").graph.node)
    _script().main([str(a), str(b), "--out", str(tmp_path / "s"), "--version", "soup-1"])
    got = _run(tmp_path / "s" / "model.onnx", IDS)
    want = _run(_graph({k: (wa[k] + wb[k]) / 2 for k in wa}).SerializeToString(), IDS)
    one = _run(a / "model.onnx", IDS)
    # the soup is the average model up to int8 error, and far from either ingredient
    assert np.abs(got - want).mean() < 0.1 * np.abs(one - want).mean()
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["version"] == "soup-1" and "metrics" not in meta and "training" not in meta
    assert meta["sha256"] == hashlib.sha256((tmp_path / "s" / "model.onnx").read_bytes()).hexdigest()
    assert [i["version"] for i in meta["soup"]] == ["a", "b"] and [i["weight"] for i in meta["soup"]] == [0.5, 0.5]
    assert meta["max_len"] == 256 and meta["soup"][0]["synthetic"] == {"synth:x|0": 1}


def test_all_weight_on_one_ingredient_reproduces_it(tmp_path: Path) -> None:
    a, b = _quantised(tmp_path, "a", _weights(3)), _quantised(tmp_path, "b", _weights(4))
    _script().main([str(a), str(b), "--weights", "1", "0", "--out", str(tmp_path / "s"), "--version", "x"])
    np.testing.assert_allclose(_run(tmp_path / "s" / "model.onnx", IDS), _run(a / "model.onnx", IDS), atol=1e-3)


def test_different_graphs_or_a_changed_model_are_refused(tmp_path: Path) -> None:
    mod = _script()
    a = _quantised(tmp_path, "a", _weights(5))
    w = _weights(6)
    w["dense.weight"] = w["dense.weight"][:, :4]
    w["dense.bias"], w["ln.weight"], w["ln.bias"] = w["dense.bias"][:4], w["ln.weight"][:4], w["ln.bias"][:4]
    other = _quantised(tmp_path, "other", w)
    with pytest.raises(SystemExit, match="differ"):
        mod.main([str(a), str(other), "--out", str(tmp_path / "s"), "--version", "x"])
    b = _quantised(tmp_path, "b", _weights(7))
    (b / "model.onnx").write_bytes((a / "model.onnx").read_bytes())
    with pytest.raises(SystemExit, match="sha256"):
        mod.main([str(a), str(b), "--out", str(tmp_path / "s2"), "--version", "x"])
