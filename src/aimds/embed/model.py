"""The embedding runtime: windows → mean-pooled unit vectors, batched, cached by input hash."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aimds.detect.encoder import DEFAULT_MODEL_DIR as ENCODER_DIR
from aimds.detect.encoder import TOKENIZER_FILE, Window, make_windows
from aimds.errors import ModelError

DEFAULT_EMBED_DIR = Path(__file__).resolve().parent.parent / "data" / "models" / "embed"
DIM = 384


@dataclass(frozen=True, slots=True)
class Embedding:
    """The windows of one text: unit vectors ``[n, dim]`` and their character spans."""

    vectors: np.ndarray
    spans: tuple[tuple[int, int], ...]

    @property
    def pooled(self) -> np.ndarray:
        """One unit vector for the whole text (normalised mean of its windows)."""
        return _unit(self.vectors.mean(axis=0, keepdims=True))[0]


def quantize(vectors: np.ndarray) -> np.ndarray:
    """Unit float vectors → int8 (×127, rounded)."""
    return np.clip(np.rint(np.asarray(vectors, dtype=np.float32) * 127.0), -127, 127).astype(np.int8)


def dequantize(codes: np.ndarray) -> np.ndarray:
    """int8 codes → unit float32 vectors (re-normalised)."""
    return _unit(np.asarray(codes, dtype=np.float32))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Embedder:
    """Embeds folded text with the two-output ONNX graph; build it with :meth:`load`."""

    dim = DIM

    def __init__(self, session: Any, tokenizer: Any, meta: dict[str, Any], *, batch_size: int = 32,
                 cache_size: int = 4096) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.meta = meta
        self.max_len = int(meta["max_len"])
        self.stride = int(meta["stride"])
        self.batch_size = max(1, batch_size)
        self._cls, self._sep, self._pad = int(meta["cls_id"]), int(meta["sep_id"]), int(meta["pad_id"])
        self._cache: OrderedDict[bytes, Embedding] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "windows": 0}

    @property
    def version(self) -> str:
        """The model version from meta.json."""
        return str(self.meta.get("version", "unknown"))

    @classmethod
    def load(cls, path: str | Path | None = None, *, threads: int = 1, batch_size: int = 32,
             cache_size: int = 4096, verify: bool = True) -> Embedder:
        """Load the model folder (default: the shipped one); raise ``ModelError`` when unusable."""
        folder = Path(path) if path is not None else DEFAULT_EMBED_DIR
        model_path, meta_path = folder / "model.onnx", folder / "meta.json"
        tok_path = folder / TOKENIZER_FILE
        if not tok_path.is_file():
            tok_path = ENCODER_DIR / TOKENIZER_FILE
        for p in (model_path, meta_path, tok_path):
            if not p.is_file():
                raise ModelError(f"embedding model incomplete: missing {p} (build it with scripts/build_embedder.py)")
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            int(meta["max_len"]), int(meta["stride"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"embedding meta.json in {folder} is unreadable: {exc}") from exc
        if verify and meta.get("sha256") != hashlib.sha256(model_path.read_bytes()).hexdigest():
            raise ModelError(f"embedding model.onnx in {folder} does not match meta.json (corrupt or replaced)")
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - both are dependencies
            raise ModelError(f"embeddings need onnxruntime and tokenizers: {exc}") from exc
        tokenizer = Tokenizer.from_file(str(tok_path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"embedding model.onnx in {folder} cannot be loaded: {exc}") from exc
        return cls(session, tokenizer, meta, batch_size=batch_size, cache_size=cache_size)

    def windows(self, text: str) -> list[Window]:
        """The model windows of ``text`` (spans are offsets in ``text``)."""
        enc = self._tokenizer.encode(text, add_special_tokens=False)
        return make_windows(enc.ids, enc.offsets, max_len=self.max_len, stride=self.stride,
                            cls_id=self._cls, sep_id=self._sep)

    def run(self, wins: Sequence[Window]) -> np.ndarray:
        """Unit vectors ``[n, dim]`` of already-built windows (mask-weighted mean pool), in batches."""
        vecs = np.empty((len(wins), self.dim), dtype=np.float32)
        order = sorted(range(len(wins)), key=lambda i: len(wins[i].ids))  # similar lengths share a batch
        for b in range(0, len(order), self.batch_size):
            idx = order[b: b + self.batch_size]
            width = max(len(wins[i].ids) for i in idx)
            ids = np.full((len(idx), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                n = len(wins[i].ids)
                ids[r, :n] = wins[i].ids
                mask[r, :n] = 1
            (hidden,) = self._session.run(["hidden"], {"input_ids": ids, "attention_mask": mask})
            m = mask[:, :, None].astype(np.float32)
            vecs[idx] = _unit((hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0))
        self.stats["windows"] += len(wins)
        return vecs

    def embed_text(self, text: str, max_windows: int | None = None) -> Embedding:
        """Every window of ``text`` (already folded), or its first ``max_windows``; cached by hash."""
        key = hashlib.blake2b(f"{max_windows}\0{text}".encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.stats["hits"] += 1
                return hit
        wins = self.windows(text)
        if max_windows is not None:
            wins = wins[:max(1, max_windows)]
        emb = Embedding(self.run(wins), tuple((w.start, w.end) for w in wins))
        with self._lock:
            self.stats["misses"] += 1
            self._cache[key] = emb
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return emb

    def embed(self, texts: Sequence[str], *, fold: bool = True, max_windows: int | None = 16) -> np.ndarray:
        """One unit vector per text (``[n, dim]`` float32), windows of all texts batched together.

        ``fold`` applies the pipeline's normalisation first (what the detector sees).
        """
        if fold:
            from aimds.normalize import normalize

            texts = [normalize(t).folded.text for t in texts]
        all_wins: list[Window] = []
        owner: list[int] = []
        for i, t in enumerate(texts):
            wins = self.windows(t)[: max_windows or None]
            all_wins.extend(wins)
            owner.extend([i] * len(wins))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not all_wins:
            return out
        np.add.at(out, np.asarray(owner), self.run(all_wins))
        return _unit(out)
