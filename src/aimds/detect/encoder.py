"""Runtime for the fine-tuned transformer classifier (the cascade's second, slower stage).

The model is all-MiniLM-L6-v2 fine-tuned by ``scripts/train_encoder.py`` and shipped as an int8
ONNX graph in ``aimds/data/models/encoder/`` with its ``tokenizer.json`` and ``meta.json``.
It runs on onnxruntime + tokenizers only (no torch, no transformers).

Long texts are cut into overlapping windows of at most ``max_len`` tokens (``[CLS] ... [SEP]``),
a new window every ``stride`` tokens; each window gets its own probability and the text's score
is the highest one (the model was trained that way: multiple-instance max pooling). Callers
should pass the *folded* view (``aimds.normalize.normalize(text).folded.text``): that is what
the model was trained on. :meth:`EncoderModel.window_scores_views` does that and maps the spans
back to the original text.

Nothing is loaded at import time: call :meth:`EncoderModel.load` once at start-up.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aimds.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from aimds.normalize.views import Views

__all__ = ["DEFAULT_MODEL_DIR", "EncoderModel", "Window", "make_windows"]

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "data" / "models" / "encoder"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"


@dataclass(frozen=True, slots=True)
class Window:
    """One model input: token ids (with ``[CLS]``/``[SEP]``) and the character span they cover."""

    ids: tuple[int, ...]
    start: int
    end: int


def make_windows(
    ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    *,
    max_len: int,
    stride: int,
    cls_id: int,
    sep_id: int,
) -> list[Window]:
    """Cut a tokenised text (no special tokens) into overlapping windows.

    Each window holds at most ``max_len - 2`` content tokens; windows start every ``stride``
    tokens and the last one is aligned to the end, so every token is in at least one window.
    An empty text yields one ``[CLS] [SEP]`` window with the span ``(0, 0)``. Shared by the
    training script and the runtime, so the two cannot drift.
    """
    body = max_len - 2
    if body < 1 or stride < 1:
        raise ValueError("max_len must be >= 3 and stride >= 1")
    n = len(ids)
    if n == 0:
        return [Window((cls_id, sep_id), 0, 0)]
    starts = list(range(0, max(n - body, 0) + 1, stride))
    if starts[-1] + body < n:
        starts.append(n - body)
    out = []
    for s in starts:
        e = min(s + body, n)
        out.append(Window((cls_id, *ids[s:e], sep_id), int(offsets[s][0]), int(offsets[e - 1][1])))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class EncoderModel:
    """The int8 ONNX window classifier; build it with :meth:`load`."""

    def __init__(self, session: Any, tokenizer: Any, meta: dict[str, Any], *, batch_size: int = 64) -> None:
        """Wrap an onnxruntime session and a tokenizers ``Tokenizer`` (use :meth:`load`)."""
        self._session = session
        self._tokenizer = tokenizer
        self.meta = meta
        self.max_len = int(meta["max_len"])
        self.stride = int(meta["stride"])
        self.batch_size = max(1, batch_size)
        self._cls_id = int(meta.get("cls_id", 101))
        self._sep_id = int(meta.get("sep_id", 102))
        self._pad_id = int(meta.get("pad_id", 0))
        self._inputs = [i.name for i in session.get_inputs()]
        self._outputs = [o.name for o in session.get_outputs()]

    @property
    def version(self) -> str:
        """The model version recorded in ``meta.json``."""
        return str(self.meta.get("version", "unknown"))

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        threads: int = 1,
        batch_size: int = 64,
        verify: bool = True,
    ) -> EncoderModel:
        """Load the model folder (default: the shipped one); raise ``ModelError`` if unusable.

        ``threads`` sets onnxruntime's ``intra_op_num_threads``; ``verify`` checks the sha256 of
        ``model.onnx`` against ``meta.json``.
        """
        folder = Path(path) if path is not None else DEFAULT_MODEL_DIR
        model_path, tok_path, meta_path = folder / MODEL_FILE, folder / TOKENIZER_FILE, folder / META_FILE
        missing = [p.name for p in (model_path, tok_path, meta_path) if not p.is_file()]
        if missing:
            raise ModelError(
                f"encoder model incomplete in {folder}: missing {', '.join(missing)} "
                "(build it with scripts/train_encoder.py)"
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            int(meta["max_len"]), int(meta["stride"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"encoder meta.json in {folder} is unreadable: {exc}") from exc
        if verify:
            want = meta.get("sha256")
            got = _sha256(model_path)
            if want != got:
                raise ModelError(
                    f"encoder model.onnx in {folder} does not match meta.json "
                    f"(sha256 {got[:12]}…, expected {str(want)[:12]}…): the file is corrupt or replaced"
                )
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ModelError(f"the encoder needs onnxruntime and tokenizers installed: {exc}") from exc
        try:
            tokenizer = Tokenizer.from_file(str(tok_path))
            tokenizer.no_truncation()
            tokenizer.no_padding()
        except Exception as exc:
            raise ModelError(f"encoder tokenizer.json in {folder} is unreadable: {exc}") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must not spin: they would steal the CPU from the rest of the pipeline.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"encoder model.onnx in {folder} cannot be loaded: {exc}") from exc
        return cls(session, tokenizer, meta, batch_size=batch_size)

    def windows(self, text: str) -> list[Window]:
        """The model windows of ``text`` (spans are character offsets in ``text``)."""
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        return make_windows(
            enc.ids, enc.offsets, max_len=self.max_len, stride=self.stride,
            cls_id=self._cls_id, sep_id=self._sep_id,
        )

    @property
    def has_hidden(self) -> bool:
        """Whether the graph also returns the embedder's hidden state (``scripts/build_embedder.py
        --encoder-output``), so one run yields both the logits and the memory embeddings."""
        return "hidden" in self._outputs

    def _run(self, wins: Sequence[Window], pooled: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Logits of ``wins`` and, when asked and available, their mask-mean-pooled unit hidden vectors."""
        out = np.empty(len(wins), dtype=np.float32)
        want = pooled and self.has_hidden
        vecs = np.empty((len(wins), 384), dtype=np.float32) if want else None
        names = [self._outputs[0], "hidden"] if want else [self._outputs[0]]
        for b in range(0, len(wins), self.batch_size):
            chunk = wins[b : b + self.batch_size]
            width = max(len(w.ids) for w in chunk)
            ids = np.full((len(chunk), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for i, w in enumerate(chunk):
                ids[i, : len(w.ids)] = w.ids
                mask[i, : len(w.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            res = self._session.run(names, {k: v for k, v in feed.items() if k in self._inputs})
            out[b : b + len(chunk)] = np.asarray(res[0], dtype=np.float32).reshape(-1)
            if vecs is not None:
                m = mask[:, :, None].astype(np.float32)
                pooled_ = (res[1] * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
                vecs[b : b + len(chunk)] = pooled_ / np.maximum(np.linalg.norm(pooled_, axis=1, keepdims=True), 1e-12)
        return out, vecs

    def _logits(self, wins: Sequence[Window]) -> np.ndarray:
        return self._run(wins)[0]

    def score_windows_pooled(self, wins: Sequence[Window]) -> tuple[list[float], np.ndarray | None]:
        """Probabilities of ``wins`` and their pooled hidden vectors (None when the graph lacks them)."""
        if not wins:
            return [], None
        logits, vecs = self._run(wins, pooled=True)
        return [_sigmoid(float(z)) for z in logits], vecs

    def score_windows(self, wins: Sequence[Window]) -> list[float]:
        """Probabilities of already-built windows (batched in one onnxruntime call per batch)."""
        if not wins:
            return []
        return [_sigmoid(float(z)) for z in self._logits(wins)]

    def window_scores(self, text: str) -> list[tuple[int, int, float]]:
        """``(char_start, char_end, probability)`` for every window of ``text``, in order."""
        wins = self.windows(text)
        logits = self._logits(wins)
        return [(w.start, w.end, _sigmoid(float(z))) for w, z in zip(wins, logits, strict=True)]

    def predict(self, text: str) -> float:
        """Probability that ``text`` is an attack: the highest window probability."""
        return max(p for _, _, p in self.window_scores(text))

    def window_scores_views(self, views: Views) -> list[tuple[int, int, float]]:
        """Score the folded view of ``views``; spans are mapped back to the original text."""
        folded = views.folded
        out = []
        for s, e, p in self.window_scores(folded.text):
            os_, oe = folded.to_original(s, e)
            out.append((os_, oe, p))
        return out


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)
