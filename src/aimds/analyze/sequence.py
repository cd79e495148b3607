"""Sequence similarity for session analysis: DTW over feature vectors, edit distance and LCS over turns.

Everything here is linear or quadratic in the (small, bounded) number of turns and never runs a
regular expression: edit distance and LCS come from ``rapidfuzz`` (C++), DTW is numpy with a
Sakoe-Chiba band.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

import numpy as np
from rapidfuzz.distance import LCSseq, Levenshtein

#: Turns longer than this are compared on their first ``MAX_COMPARE`` characters (bounded cost).
MAX_COMPARE = 400


def normalize_turn(text: str, limit: int = MAX_COMPARE) -> str:
    """Casefolded, NFKC, punctuation-free, whitespace-collapsed form of a turn, at most ``limit`` chars."""
    text = unicodedata.normalize("NFKC", text[: 4 * limit]).casefold()
    kept = "".join(c if c.isalnum() or c.isspace() else " " for c in text)
    return " ".join(kept.split())[:limit]


def edit_similarity(a: str, b: str) -> float:
    """Normalised Levenshtein similarity of two strings in [0, 1] (1 = identical)."""
    return float(Levenshtein.normalized_similarity(a, b))


def lcs_similarity(a: str | Sequence[str], b: str | Sequence[str]) -> float:
    """Normalised longest-common-subsequence similarity in [0, 1] of two strings or token lists."""
    return float(LCSseq.normalized_similarity(a, b))


def token_similarity(a: str, b: str) -> float:
    """LCS similarity over word tokens (order-aware, robust to small insertions)."""
    return lcs_similarity(a.split(), b.split())


def dtw(x: np.ndarray, y: np.ndarray, band: int | None = None) -> float:
    """Dynamic-time-warping distance between two sequences of feature vectors.

    ``x`` is (n, d), ``y`` is (m, d) (1-D arrays are treated as d = 1); the local cost is the
    Euclidean distance. ``band`` is the Sakoe-Chiba radius (cells with ``|i - j'| > band`` are
    forbidden, where ``j'`` is ``j`` rescaled to ``x``'s length); ``None`` means no band. Returns the
    accumulated cost divided by the warping path's length, so sequences of different lengths compare.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        return float("inf")
    cost = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=2))
    acc = np.full((n + 1, m + 1), np.inf)
    steps = np.zeros((n + 1, m + 1))
    acc[0, 0] = 0.0
    scale = n / m
    for i in range(1, n + 1):
        if band is None:
            lo, hi = 1, m
        else:
            lo = max(1, int(np.floor((i - 1 - band) / scale)) + 1)
            hi = min(m, int(np.ceil((i - 1 + band) / scale)) + 1)
        for j in range(lo, hi + 1):
            prev = ((acc[i - 1, j - 1], steps[i - 1, j - 1]), (acc[i - 1, j], steps[i - 1, j]),
                    (acc[i, j - 1], steps[i, j - 1]))
            best, k = min(prev, key=lambda p: p[0])
            acc[i, j] = best + cost[i - 1, j - 1]
            steps[i, j] = k + 1
    if not np.isfinite(acc[n, m]):
        return float("inf")
    return float(acc[n, m] / steps[n, m])


def ordered_match(steps: int, turns: int, matches: Callable[[int, int], float]) -> tuple[float, list[int]]:
    """Weighted LCS: align ``steps`` chain steps, in order, to ``turns`` turns.

    ``matches(i, j)`` scores step ``i`` against turn ``j`` in [0, 1] (0 = no match). Returns the
    best total weight and, for each step, the turn it matched (-1 when unmatched).
    """
    dp = np.zeros((steps + 1, turns + 1))
    for i in range(1, steps + 1):
        for j in range(1, turns + 1):
            w = matches(i - 1, j - 1)
            dp[i, j] = max(dp[i - 1, j], dp[i, j - 1], dp[i - 1, j - 1] + w if w > 0 else 0.0)
    where = [-1] * steps
    i, j = steps, turns
    while i > 0 and j > 0:
        if dp[i, j] == dp[i - 1, j]:
            i -= 1
        elif dp[i, j] == dp[i, j - 1]:
            j -= 1
        else:
            where[i - 1] = j - 1
            i -= 1
            j -= 1
    return float(dp[steps, turns]), where


def near_duplicates(texts: Sequence[str], target: str, threshold: float = 0.6) -> list[int]:
    """Indices of ``texts`` (already normalised) whose similarity to ``target`` is at least ``threshold``.

    Similarity is the larger of character edit similarity and word-LCS similarity, so both small
    character mutations (typos, leetspeak) and word insertions/swaps count as near-duplicates.
    """
    out = []
    for i, t in enumerate(texts):
        if not t or not target:
            continue
        if max(edit_similarity(t, target), token_similarity(t, target)) >= threshold:
            out.append(i)
    return out


def cluster(texts: Sequence[str], threshold: float = 0.6) -> list[list[int]]:
    """Single-link clusters of near-duplicate texts (indices), largest first."""
    parent = list(range(len(texts)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i in range(len(texts)):
        for j in near_duplicates(texts[:i], texts[i], threshold):
            parent[find(j)] = find(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))
