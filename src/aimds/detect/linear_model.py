"""The hashed n-gram logistic-regression model: artifact format, loading and windowed scoring."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from aimds.detect.features import FeatureSpec, featurize, window_sums
from aimds.errors import ModelError

ATTACK_CATEGORIES = ("prompt_injection", "indirect_injection", "jailbreak", "prompt_leak", "obfuscation")
FORMAT = "aimds-linear/1"
#: From this many distinct windows on they are featurised together (measured 0.6-0.75x the time at 10-100 KB;
#: at 3 windows, 1 KB, one at a time is faster).
BATCH_MIN_WINDOWS = 8


@lru_cache(maxsize=32)
def _window_features(text: str, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """:func:`featurize`, remembered for the last few windows: the riskiest window scored by
    :meth:`LinearModel.logit` is featurised again by :meth:`LinearModel.category`, which costs as much as
    scoring it. The arrays are shared, so they are read-only."""
    idx, val = featurize(text, spec)
    idx.setflags(write=False)
    val.setflags(write=False)
    return idx, val


def default_model_path() -> Path:
    """The model shipped with the package."""
    return Path(str(resources.files("aimds").joinpath("data/models/linear.npz")))


def windows(n: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Character windows ``[start, end)`` covering a text of length ``n``."""
    if n <= size:
        return [(0, n)]
    out = []
    start = 0
    while True:
        out.append((start, min(start + size, n)))
        if start + size >= n:
            return out
        start += stride


@dataclass
class LinearModel:
    """Weights and metadata of one trained model."""

    spec: FeatureSpec
    weights: np.ndarray               # (dim,) float32
    bias: float
    cat_weights: np.ndarray           # (len(ATTACK_CATEGORIES), cat_dim) float32
    cat_bias: np.ndarray
    calibration: tuple[float, float] = (1.0, 0.0)   # Platt: p = sigmoid(a * logit + b)
    window: int = 512
    stride: int = 384
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """Model version string from its metadata."""
        return str(self.meta.get("version", "unversioned"))

    def logit(self, text: str) -> float:
        """Raw decision value for one window of folded text."""
        idx, val = _window_features(text, self.spec)
        return float(self.weights[idx] @ val) + self.bias

    def proba(self, logit: float) -> float:
        """Calibrated probability of attack for a raw decision value."""
        a, b = self.calibration
        z = a * logit + b
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0

    def score_windows(self, text: str) -> list[tuple[int, int, float]]:
        """``(start, end, probability)`` for each window of ``text``.

        Several windows are featurised together (:func:`~aimds.detect.features.window_sums`: the text is
        hashed once) with the same features each window gets alone. Windows with the same text are scored
        once: repeated content (boilerplate, or padding meant to make detection slow) costs one window.
        """
        spans = windows(len(text), self.window, self.stride)
        first: dict[str, int] = {}
        owner = [first.setdefault(text[s:e], k) for k, (s, e) in enumerate(spans)]
        distinct = sorted(set(owner))
        if len(distinct) < BATCH_MIN_WINDOWS or min(e - s for s, e in spans) < max(self.spec.char_ngrams):
            alone = {k: self.proba(self.logit(text[slice(*spans[k])])) for k in distinct}
            return [(s, e, alone[owner[k]]) for k, (s, e) in enumerate(spans)]
        cs, cn, ws, wn = window_sums(text, [spans[k] for k in distinct], self.spec, self.weights)
        z = cs / np.sqrt(np.maximum(cn, 1.0)) + ws / np.sqrt(np.maximum(wn, 1.0)) + self.bias
        p = {k: self.proba(float(v)) for k, v in zip(distinct, z, strict=True)}
        return [(s, e, p[owner[k]]) for k, (s, e) in enumerate(spans)]

    def category(self, text: str, exclude: tuple[str, ...] = ()) -> str:
        """Most likely attack category for ``text`` (meaningful only when it is an attack)."""
        idx, val = _window_features(text, self.spec)
        cat_idx = idx & (self.cat_weights.shape[1] - 1)
        scores = self.cat_weights[:, cat_idx] @ val + self.cat_bias
        for name in exclude:
            scores[ATTACK_CATEGORIES.index(name)] = -np.inf
        return ATTACK_CATEGORIES[int(np.argmax(scores))]

    def save(self, path: Path) -> None:
        """Write the artifact (float16 weights, JSON metadata) to ``path``."""
        meta = dict(self.meta)
        meta.update({
            "format": FORMAT,
            "spec": self.spec.to_dict(),
            "bias": self.bias,
            "cat_bias": [float(x) for x in self.cat_bias],
            "calibration": list(self.calibration),
            "window": self.window,
            "stride": self.stride,
        })
        w16 = self.weights.astype(np.float16)
        c16 = self.cat_weights.astype(np.float16)
        meta["sha256"] = hashlib.sha256(w16.tobytes() + c16.tobytes()).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, weights=w16, cat_weights=c16, meta=np.array(json.dumps(meta, sort_keys=True)))

    @classmethod
    def load(cls, path: Path | None = None) -> LinearModel:
        """Read an artifact, checking its format and checksum."""
        path = path or default_model_path()
        try:
            with np.load(path, allow_pickle=False) as z:
                w16, c16 = z["weights"], z["cat_weights"]
                meta = json.loads(str(z["meta"]))
        except FileNotFoundError:
            raise ModelError(f"classifier model not found at {path}; run `aimds train`") from None
        except Exception as exc:  # corrupt zip, missing arrays, bad JSON
            raise ModelError(f"classifier model at {path} is unreadable: {exc}") from None
        if meta.get("format") != FORMAT:
            raise ModelError(f"{path}: unsupported model format {meta.get('format')!r}")
        if hashlib.sha256(w16.tobytes() + c16.tobytes()).hexdigest() != meta.get("sha256"):
            raise ModelError(f"{path}: checksum mismatch (corrupt or tampered model)")
        return cls(
            spec=FeatureSpec.from_dict(meta["spec"]),
            weights=w16.astype(np.float32),
            bias=float(meta["bias"]),
            cat_weights=c16.astype(np.float32),
            cat_bias=np.asarray(meta["cat_bias"], dtype=np.float32),
            calibration=(float(meta["calibration"][0]), float(meta["calibration"][1])),
            window=int(meta["window"]),
            stride=int(meta["stride"]),
            meta=meta,
        )
