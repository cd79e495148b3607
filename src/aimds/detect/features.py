"""Hashed character and word n-gram features for the linear classifier, computed with numpy.

The same function builds training matrices and runtime features, so the two cannot drift.
Features are binary (present / absent), each block (characters, words) L2-normalised on its own,
hashed into ``dim`` buckets with stable hashes (independent of ``PYTHONHASHSEED``).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

# A single character class with one quantifier: linear time in Python's engine (no backtracking).
_WORD = re.compile(r"\w+")
_MIX = np.uint64(0x9E3779B97F4A7C15)
_P = np.uint64(1_000_003)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """Feature configuration stored with a trained model."""

    dim: int = 1 << 20
    char_ngrams: tuple[int, ...] = (2, 3, 4, 5)
    word_ngrams: tuple[int, ...] = (1, 2)
    max_chars: int = 4096  # longer texts are scored in windows by the classifier detector

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"dim": self.dim, "char_ngrams": list(self.char_ngrams),
                "word_ngrams": list(self.word_ngrams), "max_chars": self.max_chars}

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(dim=int(str(raw["dim"])), char_ngrams=tuple(int(n) for n in _ints(raw["char_ngrams"])),
                   word_ngrams=tuple(int(n) for n in _ints(raw["word_ngrams"])), max_chars=int(str(raw["max_chars"])))


def _ints(value: object) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise ValueError(f"expected a list of integers, got {value!r}")
    return value


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values (np.unique is several times slower on small arrays)."""
    if len(a) == 0:
        return a.astype(np.int64)
    a = np.sort(a)
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep].astype(np.int64)


def _mix(h: np.ndarray) -> np.ndarray:
    h = h * _MIX
    return h ^ (h >> np.uint64(29))


def _ngram_indices(units: np.ndarray, sizes: tuple[int, ...], seed: int, salt: int, dim: int) -> np.ndarray:
    """Unique hashed indices of the n-grams (for each n in ``sizes``) of a sequence of unit hashes."""
    parts = []
    mask = np.uint64(dim - 1)
    with np.errstate(over="ignore"):
        for n in sizes:
            if len(units) < n:
                continue
            h = np.full(len(units) - n + 1, np.uint64(seed + n), dtype=np.uint64)
            for k in range(n):
                h = h * _P + units[k : len(units) - n + 1 + k]
            parts.append(_mix(h ^ np.uint64(salt)) & mask)
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return _unique(np.concatenate(parts))


def char_indices(text: str, spec: FeatureSpec) -> np.ndarray:
    """Unique hashed indices of the character n-grams of ``" " + text + " "``."""
    codes = np.frombuffer((" " + text + " ").encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return _ngram_indices(codes, spec.char_ngrams, 0, 0, spec.dim)


def word_indices(text: str, spec: FeatureSpec) -> np.ndarray:
    """Unique hashed indices of word n-grams."""
    words = _WORD.findall(text)
    if not words:
        return np.zeros(0, dtype=np.int64)
    hs = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    return _ngram_indices(hs, spec.word_ngrams, 97, 0xABCDEF, spec.dim)


def featurize(text: str, spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """Sparse features of ``text`` as ``(indices, values)`` (indices may repeat across blocks)."""
    c = char_indices(text, spec)
    w = word_indices(text, spec)
    vals = np.concatenate([
        np.full(len(c), 1.0 / np.sqrt(max(len(c), 1)), dtype=np.float32),
        np.full(len(w), 1.0 / np.sqrt(max(len(w), 1)), dtype=np.float32),
    ])
    return np.concatenate([c, w]), vals
