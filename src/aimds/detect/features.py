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
#: ``\w`` for ASCII code points: letters, digits and ``_``.
_ASCII_WORD = np.array([chr(c).isalnum() or chr(c) == "_" for c in range(128)], dtype=bool)


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
    """Sorted unique values, in ``a``'s dtype (np.unique is several times slower on small arrays)."""
    if len(a) == 0:
        return a
    a = np.sort(a)
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def _mix(h: np.ndarray) -> np.ndarray:
    h = h * _MIX
    return h ^ (h >> np.uint64(29))


def _ngram_indices(units: np.ndarray, sizes: tuple[int, ...], seed: int, salt: int, dim: int) -> np.ndarray:
    """Unique hashed indices of the n-grams (for each n in ``sizes``) of a sequence of unit hashes."""
    rolled = list(_rolling(units, sizes, seed).values())
    if not rolled:
        return np.zeros(0, dtype=np.int64)
    with np.errstate(over="ignore"):  # one mix over all sizes at once: fewer, larger numpy calls
        keys = _mix(np.concatenate(rolled) ^ np.uint64(salt)) & np.uint64(dim - 1)
    # Indices below 2^32 sort faster as 32-bit keys (same values, same order).
    return _unique(keys.astype(np.uint32) if dim <= 1 << 32 else keys).astype(np.int64)


def char_indices(text: str, spec: FeatureSpec) -> np.ndarray:
    """Unique hashed indices of the character n-grams of ``" " + text + " "``."""
    codes = np.frombuffer((" " + text + " ").encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return _ngram_indices(codes, spec.char_ngrams, 0, 0, spec.dim)


def word_indices(text: str, spec: FeatureSpec) -> np.ndarray:
    """Unique hashed indices of word n-grams."""
    words = _WORD.findall(text)
    if not words:
        return np.zeros(0, dtype=np.int64)
    hs = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))
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


def _rolling(units: np.ndarray, sizes: tuple[int, ...], seed: int) -> dict[int, np.ndarray]:
    """Hashes of every ``n``-gram of ``units`` for each ``n`` in ``sizes`` that fits (unmixed; the same
    arithmetic as :func:`_ngram_indices`: ``(seed + n) * P^n`` plus the n-gram's polynomial, mod 2^64)."""
    out: dict[int, np.ndarray] = {}
    acc = units
    with np.errstate(over="ignore"):  # mod 2^64 on purpose
        for n in range(1, max(sizes, default=0) + 1):
            if len(units) < n:
                break
            if n > 1:  # one multiply-add per size: H_n(i) = H_{n-1}(i) * P + u[i + n - 1]
                acc = acc[:-1] * _P + units[n - 1 :]
            if n in sizes:
                out[n] = acc + np.uint64((seed + n) * pow(int(_P), n, 1 << 64) % (1 << 64))
    return out


def _slices(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) for ``counts[i]`` consecutive positions from ``starts[i]``, for every i."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, np.arange(int(counts.sum())) - np.repeat(first, counts) + np.repeat(starts, counts)


def window_sums(text: str, spans: list[tuple[int, int]], spec: FeatureSpec,
                weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per window ``text[s:e]`` of ``spans``: the weight sums and counts of its unique char and word
    n-gram indices — exactly the features :func:`featurize` gives each window alone, computed for all
    windows at once (the text is hashed once; windows share the work). Every window must be at least
    ``max(spec.char_ngrams)`` characters long. Returns ``(char_sum, char_n, word_sum, word_n)``.
    """
    nw, dim = len(spans), spec.dim
    mask = np.uint64(dim - 1)
    s_arr = np.fromiter((s for s, _ in spans), dtype=np.int64, count=nw)
    e_arr = np.fromiter((e for _, e in spans), dtype=np.int64, count=nw)
    length = e_arr - s_arr
    u = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    space = np.uint64(32)
    owners, keys = [], []
    with np.errstate(over="ignore"):
        grams = _rolling(u, spec.char_ngrams, 0)
        for n in spec.char_ngrams:
            # inside the window: the whole text's n-grams; at each end, the one with the padding space
            inner = np.maximum(length - n + 1, 0)
            who, pos = _slices(s_arr, inner)
            hs = [grams[n][pos]] if n in grams else []
            owners.append(who)
            left = np.full(nw, np.uint64(n), dtype=np.uint64) * _P + space
            right = np.full(nw, np.uint64(n), dtype=np.uint64)
            for k in range(n - 1):
                left = left * _P + u[s_arr + k]
                right = right * _P + u[e_arr - n + 1 + k]
            right = right * _P + space
            hs += [left, right]
            owners += [np.arange(nw), np.arange(nw)]
            keys += [_mix(h) & mask for h in hs]
        char_sum, char_n = _unique_sums(np.concatenate(owners), np.concatenate(keys), nw, dim, weights)
        # words: \w runs of the window = the text's runs clipped to it
        starts, ends, crc = _word_runs(text, u)
        first = np.searchsorted(ends, s_arr, side="right")
        last = np.searchsorted(starts, e_arr, side="left")
        seqs = []
        for w in range(nw):
            seq = crc[first[w]:last[w]].copy()
            if len(seq):
                a, b = int(starts[first[w]]), int(ends[first[w]])
                if a < s_arr[w] or b > e_arr[w]:
                    seq[0] = zlib.crc32(text[max(a, int(s_arr[w])):min(b, int(e_arr[w]))].encode("utf-8"))
                a, b = int(starts[last[w] - 1]), int(ends[last[w] - 1])
                if len(seq) > 1 and b > e_arr[w]:
                    seq[-1] = zlib.crc32(text[a:int(e_arr[w])].encode("utf-8"))
            seqs.append(seq)
        counts = np.fromiter((len(q) for q in seqs), dtype=np.int64, count=nw)
        x = np.concatenate(seqs) if nw else np.zeros(0, dtype=np.uint64)
        who = np.repeat(np.arange(nw), counts)
        salt = np.uint64(0xABCDEF)
        owners, keys = [], []
        word_grams = _rolling(x, spec.word_ngrams, 97)
        for n in spec.word_ngrams:
            if n not in word_grams:
                continue
            h = word_grams[n]
            same = who[: len(who) - n + 1] == who[n - 1:]  # n-grams inside one window only
            owners.append(who[: len(who) - n + 1][same])
            keys.append(_mix(h[same] ^ salt) & mask)
        word_sum, word_n = _unique_sums(np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64),
                                        np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64),
                                        nw, dim, weights)
    return char_sum, char_n, word_sum, word_n


def _word_runs(text: str, units: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end and CRC-32 of every ``\\w+`` run of ``text`` (``units``: its code points).

    The runs come from a vectorised word-character mask (``\\w`` in Python's ``re`` is ``str.isalnum()``
    or ``_``; each distinct non-ASCII code point is looked up once) and the words from ``findall``, so no
    Python code runs per word; should the two ever disagree, ``finditer`` decides.
    """
    words = _WORD.findall(text)
    is_word = np.zeros(len(units), dtype=bool)
    low = units < 128
    is_word[low] = _ASCII_WORD[units[low].astype(np.intp)]
    if not low.all():
        high = units[~low]
        cps = np.unique(high)
        ok = np.fromiter((chr(c).isalnum() for c in cps.tolist()), dtype=bool, count=len(cps))
        is_word[~low] = ok[np.searchsorted(cps, high)]
    edge = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    if len(starts) != len(words):  # not expected; the regex is the reference
        spans = [m.span() for m in _WORD.finditer(text)]
        starts = np.fromiter((a for a, _ in spans), dtype=np.int64, count=len(spans))
        ends = np.fromiter((b for _, b in spans), dtype=np.int64, count=len(spans))
    crc = np.fromiter(map(zlib.crc32, map(str.encode, words)), dtype=np.uint64, count=len(words))
    return starts.astype(np.int64), ends.astype(np.int64), crc


def _unique_sums(owner: np.ndarray, idx: np.ndarray, nw: int, dim: int,
                 weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per owner: the sum of ``weights`` over its unique indices, and how many there are."""
    # keys fit 32 bits for every text under the input limit: sorting them is ~2.4x faster than int64
    wide = np.int64 if nw * dim >= 1 << 32 else np.uint32
    keys = _unique(owner.astype(wide) * wide(dim) + idx.astype(wide))
    shift = wide(dim.bit_length() - 1)  # dim is a power of two (indices are masked with dim - 1)
    own = (keys >> shift).astype(np.intp)
    ix = (keys & wide(dim - 1)).astype(np.intp)
    return (np.bincount(own, weights=weights[ix], minlength=nw),
            np.bincount(own, minlength=nw).astype(np.float64))
