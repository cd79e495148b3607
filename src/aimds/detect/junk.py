"""Runs of non-linguistic tokens ("junk"): random letters, hashes, hex and base64 blobs, ciphertext.

The transformer classifier was trained on language; on a run of random letter strings or a list of
SHA-256 digests it returns confident nonsense (measured: p ≈ 0.9 for 30 random words, 0.95 for ten
digests, 0.91 for a random base64 blob — each a block). :func:`junk_runs` finds such runs so that
the transformer can read the text without them; what is *encoded* in a run is the normaliser's job
(it decodes base64, hex, rot13, Caesar shifts and leetspeak into views the other detectors read).

A token is ``junk`` when it is an ASCII letter word of at least three letters whose mean character
trigram log-probability is below the model's threshold (the trigram model and the threshold are
built from benign training text by ``scripts/build_junk_model.py``), a hex string of eight or more
characters with a digit, or a letters-and-digits token of sixteen or more characters. Words in
other scripts are language; numbers, short words and identifiers with ``_`` are neutral. A run is a
stretch of junk and neutral tokens holding at least ``min_junk`` junk tokens, which a single
language word does not interrupt when junk follows it, and whose junk tokens are mostly distinct
(a word repeated over and over is a known attack shape, not noise, and stays); runs with fewer than
three language words between them merge, since the model is just as confident on a leftover
fragment of noise ("tbdaser lta": p 0.985).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["DEFAULT_MODEL_PATH", "JunkModel", "compact", "junk_runs"]

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "models" / "junk" / "trigrams.npz"

#: Alphabet of the trigram model: two boundary marks and the 26 ASCII letters.
ALPHABET = "^abcdefghijklmnopqrstuvwxyz$"
_TOKEN = re.compile(r"\w+")  # one greedy character class: linear time
_HEX = frozenset("0123456789abcdef")
_LUT = np.zeros(128, dtype=np.int64)
for _i, _c in enumerate(ALPHABET):
    _LUT[ord(_c)] = _i

JUNK, NEUTRAL, WORD = 2, 1, 0


@dataclass(frozen=True, slots=True)
class JunkModel:
    """Character trigram log-probabilities (``logp[a, b, c]`` = log2 P(c | a b)) and the word threshold."""

    logp: np.ndarray
    threshold: float
    meta: dict[str, object]

    @classmethod
    def load(cls, path: str | Path | None = None) -> JunkModel:
        """Read a model written by ``scripts/build_junk_model.py``."""
        with np.load(path or DEFAULT_MODEL_PATH) as z:
            logp = z["logp"].astype(np.float32)
            meta = json.loads(str(z["meta"]))
        if logp.shape != (len(ALPHABET),) * 3:
            raise ValueError(f"junk model has shape {logp.shape}, expected {(len(ALPHABET),) * 3}")
        return cls(logp, float(meta["threshold"]), meta)

    def word_scores(self, words: list[str]) -> np.ndarray:
        """Mean trigram log2-probability of each lower-case ASCII letter word (vectorised)."""
        if not words:
            return np.zeros(0, dtype=np.float32)
        padded = ["^^" + w + "$" for w in words]
        codes = _LUT[np.frombuffer("".join(padded).encode("ascii"), dtype=np.uint8)]
        lens = np.fromiter((len(p) for p in padded), dtype=np.int64, count=len(padded))
        ends = np.cumsum(lens)
        starts = ends - lens
        # trigram i ends at character i (i >= 2 within its word): mask the first two of each word
        lp = self.logp[codes[:-2], codes[1:-1], codes[2:]]
        valid = np.ones(len(codes), dtype=bool)
        valid[starts] = False
        valid[starts + 1] = False
        contrib = np.zeros(len(codes), dtype=np.float32)
        contrib[2:] = lp
        contrib[~valid] = 0.0
        sums = np.add.reduceat(contrib, starts)
        return sums / (lens - 2)


@cache
def default_model() -> JunkModel:
    """The shipped model (loaded once)."""
    return JunkModel.load()


def _kinds(tokens: list[str], model: JunkModel) -> list[int]:
    kinds = [NEUTRAL] * len(tokens)
    alpha: list[int] = []
    for i, tok in enumerate(tokens):
        if not tok.isascii():
            kinds[i] = WORD
        elif tok.isdigit() or "_" in tok:
            continue
        elif tok.isalpha():
            if len(tok) >= 3:
                alpha.append(i)
        elif (len(tok) >= 8 and _HEX.issuperset(tok.lower())) or len(tok) >= 16:
            kinds[i] = JUNK
    if alpha:
        scores = model.word_scores([tokens[i].lower() for i in alpha])
        for i, s in zip(alpha, scores.tolist(), strict=True):
            kinds[i] = JUNK if s < model.threshold else WORD
    return kinds


def junk_runs(text: str, *, model: JunkModel | None = None, min_junk: int = 4,
              max_repeat: float = 0.3, min_words: int = 3) -> list[tuple[int, int]]:
    """``[start, end)`` character spans of the runs of junk tokens in ``text``, in order.

    A run needs ``min_junk`` junk tokens; one whose distinct junk tokens are at most ``max_repeat``
    of its junk tokens (the same nonsense word repeated) is not reported. Fewer than ``min_words``
    language words between two runs, or between a run and the start or end of the text, are
    fragments of the noise (a random string that happens to read like a word) and join the run.
    """
    model = model or default_model()
    matches = list(_TOKEN.finditer(text))
    if len(matches) < min_junk:
        return []
    tokens = [m.group() for m in matches]
    kinds = _kinds(tokens, model)
    if kinds.count(JUNK) < min_junk:
        return []
    found: list[list[int]] = []  # [first token, last token] of each run
    i, n = 0, len(tokens)
    while i < n:
        if kinds[i] != JUNK:
            i += 1
            continue
        j, last, count, distinct = i, i, 0, set()
        while j < n:
            if kinds[j] == JUNK:
                count, last = count + 1, j
                distinct.add(tokens[j].lower())
            elif kinds[j] == WORD:
                nxt = next((k for k in kinds[j + 1 : j + 4] if k != NEUTRAL), None)
                if nxt != JUNK:
                    break
            j += 1
        if count >= min_junk and len(distinct) > max_repeat * count:
            found.append([i, last])
        i = last + 1
    if not found:
        return []
    merged = [found[0]]
    for a, b in found[1:]:
        if kinds[merged[-1][1] + 1 : a].count(WORD) < min_words:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    spans = [[matches[a].start(), matches[b].end()] for a, b in merged]
    if kinds[: merged[0][0]].count(WORD) < min_words:
        spans[0][0] = 0
    if kinds[merged[-1][1] + 1 :].count(WORD) < min_words:
        spans[-1][1] = len(text)
    return [(a, b) for a, b in spans]


def compact(text: str, runs: list[tuple[int, int]]) -> tuple[str, np.ndarray]:
    """``text`` without the ``runs`` (each replaced by one space) and, for each character of the
    result plus its end, the index in ``text`` it came from."""
    parts: list[str] = []
    index: list[np.ndarray] = []
    pos = 0
    for s, e in runs:
        parts.append(text[pos:s] + " ")
        index.append(np.arange(pos, s + 1, dtype=np.int64))
        pos = e
    parts.append(text[pos:])
    index.append(np.arange(pos, len(text) + 1, dtype=np.int64))
    return "".join(parts), np.concatenate(index)


def substitute(text: str, pieces: list[tuple[int, int, str]]) -> tuple[str, np.ndarray]:
    """``text`` with each ``(start, end, replacement)`` span (sorted, not overlapping) replaced and, for
    each character of the result plus its end, the index in ``text`` it came from (a replacement's
    characters all come from its span's start)."""
    parts: list[str] = []
    index: list[np.ndarray] = []
    pos = 0
    for s, e, rep in pieces:
        parts.append(text[pos:s] + rep)
        index.append(np.arange(pos, s, dtype=np.int64))
        index.append(np.full(len(rep), s, dtype=np.int64))
        pos = e
    parts.append(text[pos:])
    index.append(np.arange(pos, len(text) + 1, dtype=np.int64))
    return "".join(parts), np.concatenate(index)
