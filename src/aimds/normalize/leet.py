"""Leetspeak folding ("1gn0r3" -> "ignore") and de-spacing ("i g n o r e" -> "ignore").

Both work on the folded text and its offsets and touch only what looks deliberate: leet symbols
inside tokens that mix them with letters (so "1998", "3.14", "$20", "mp3", hashes and e-mail
addresses stay), and runs of four or more single letters separated by spaces, dots, dashes or
underscores.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import re2

from aimds.normalize.fold import apply_edits
from aimds.normalize.words import common_words

LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"}
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789@$")
_HEX = frozenset("0123456789abcdef")
_OTHER_DIGITS = frozenset("269")
_TOKEN_RE = re2.compile(
    r"[a-z0-9@$]*[a-z][0134578@$]+[a-z][a-z0-9@$]*|[0134578][a-z]{3}[a-z0-9@$]*|[a-z]{2,}11"
)
# Multi-character letter shapes, longest first. Only used next to letters.
_SHAPES = (("|\\/|", "m"), ("/\\/\\", "m"), ("\\/\\/", "w"), ("|\\|", "n"), ("|-|", "h"), ("|_|", "u"),
           ("\\/", "v"), ("/\\", "a"))
_SHAPE_RE = re2.compile(r"[a-z]?(?:\|\\/\||/\\/\\|\\/\\/|\|\\\||\|-\||\|_\||\\/|/\\)[a-z]?")
_MAX_TOKENS = 3_000
_SPACED_RE = re2.compile(r"\pL(?:[ ._\-*~]{1,3}\pL){3,}")
_MAX_SPACED_CHARS = 400_000


@dataclass(slots=True)
class Rewrite:
    """A rewritten text with offsets into the original and what was changed."""

    text: str
    offsets: np.ndarray
    count: int            # tokens rewritten (leet); runs of five letters or more (spaced)
    start: int            # span of the changes in the original
    end: int
    detail: str
    capped: bool = False  # hostile volume: the rest was left as it was


def deleet(text: str, off: np.ndarray) -> Rewrite | None:
    """Fold leetspeak inside letter/symbol tokens of the folded ``text``; ``None`` if nothing changes."""
    spans: list[tuple[int, int]] = []
    if ("\\" in text or "|" in text) and _SHAPE_RE.search(text):
        text, off, shape_spans = _fold_shapes(text, off)
        spans.extend(shape_spans)
    if not _TOKEN_RE.search(text):
        return _result(text, off, spans, [], False) if spans else None
    pieces: list[str] = []
    pos = 0
    changed_tokens: list[str] = []
    capped = False
    n = len(text)
    for k, m in enumerate(_TOKEN_RE.finditer(text)):
        if k >= _MAX_TOKENS:
            capped = True
            break
        s, e = m.span()
        if (s > 0 and text[s - 1] in _TOKEN_CHARS) or (e < n and text[e] in _TOKEN_CHARS):
            continue
        new = _deleet_token(text[s:e], text[e:e + 1])
        if new is None:
            continue
        pieces.append(text[pos:s])
        pieces.append(new)               # same length: the offsets do not change
        pos = e
        spans.append((s, e))
        changed_tokens.append(new)
    if not spans:
        return None
    pieces.append(text[pos:])
    return _result("".join(pieces), off, spans, changed_tokens, capped)


def _result(text: str, off: np.ndarray, spans: list[tuple[int, int]], words: list[str], capped: bool) -> Rewrite:
    lo = min(s for s, _ in spans)
    hi = max(e for _, e in spans)
    return Rewrite(text, off, len(spans), int(off[lo]), int(off[hi - 1]) + 1, " ".join(words)[:80], capped)


def _deleet_token(tok: str, after: str) -> str | None:
    """The token with its leet symbols folded, or ``None`` when it does not look like leetspeak.

    Accepted: two or more substitutions, or one that yields a common word ("passw0rd"). Refused:
    identifiers and numbers ("i2c", "x100", hex ids), variables and handles ("$user", "@name"),
    e-mail addresses.
    """
    if len(tok) > 24 or tok[0] in "@$" or not _OTHER_DIGITS.isdisjoint(tok):
        return None
    leet = sum(1 for c in tok if c in LEET)
    if leet == 0 or len(tok) - leet < 2:
        return None
    if "@" in tok and after == ".":
        return None                      # an e-mail address
    if len(tok) <= 5 and tok[0].isalpha() and tok[1:3].isdigit() and tok[1] != "0" and tok[3:].isalpha():
        return None                      # a numeronym ("i18n", "a11y")
    if len(tok) >= 4 and set(tok) <= _HEX:
        return None                      # a hash, colour or hex id
    if any(tok[i:i + 3].isdigit() or (tok[i].isdigit() and tok[i + 1] == "x" and tok[i + 2].isdigit())
           for i in range(len(tok) - 2)):
        return None                      # a number or a size inside an identifier ("4x100m", "44x44px")
    out = []
    for i, c in enumerate(tok):
        if c == "1" and ((i > 0 and tok[i - 1] in "1l") or (i + 1 < len(tok) and tok[i + 1] in "1l")):
            out.append("l")
        else:
            out.append(LEET.get(c, c))
    word = "".join(out)
    if leet >= 2 or word in common_words():
        return word
    return None


def _fold_shapes(text: str, off: np.ndarray) -> tuple[str, np.ndarray, list[tuple[int, int]]]:
    """Replace multi-character letter shapes such as ``|\\/|`` next to letters."""
    edits: list[tuple[int, int, str]] = []
    for k, m in enumerate(_SHAPE_RE.finditer(text)):
        if k >= _MAX_TOKENS:
            break
        s, e = m.span()
        if text[s].isalpha():
            s += 1
        if e > s and text[e - 1].isalpha():
            e -= 1
        has_left = m.start() < s
        has_right = e < m.end()
        if not (has_left or has_right) or (s > 0 and text[s - 1] == ":"):
            continue
        piece = text[s:e]
        for shape, letter in _SHAPES:
            if piece == shape:
                edits.append((s, e, letter))
                break
    if not edits:
        return text, off, []
    new_text, new_off = apply_edits(text, off, edits)
    # Positions of the replaced letters in the new text.
    spans = []
    shift = 0
    for s, e, _ in edits:
        spans.append((s - shift, s - shift + 1))
        shift += e - s - 1
    return new_text, new_off, spans


def despace(text: str, off: np.ndarray) -> Rewrite | None:
    """Join runs of 4+ single letters split by spaces/dots/dashes/underscores; ``None`` if none.

    A separator that differs from the run's usual one (a space in a dotted run, two or more
    spaces in the original of a spaced run) is kept as a word gap.
    """
    if not _SPACED_RE.search(text):
        return None
    drops: list[int] = []
    gaps: list[int] = []
    long_drops: list[np.ndarray] = []
    long_gaps: list[np.ndarray] = []
    joined: list[str] = []
    spans: list[tuple[int, int]] = []
    budget = _MAX_SPACED_CHARS
    capped = False
    n = len(text)
    cps: np.ndarray | None = None
    strong = 0
    for k, m in enumerate(_SPACED_RE.finditer(text)):
        s, e = m.span()
        if budget <= 0 or k >= _MAX_SPACED_RUNS:
            capped = True
            break
        if e - s > budget:
            e = s + budget                 # hostile volume: join the first part only
            capped = True
        budget -= e - s
        if e - s > _LONG_RUN:
            if cps is None:
                cps = np.frombuffer(text.encode("utf-32-le"), "<u4")
            long = _long_run(text, cps, off, s, e)
            if long is None:
                continue
            drop_a, gap_a, first, last = long
            long_drops.append(drop_a)
            long_gaps.append(gap_a)
            drop_l, gap_l = drop_a[:200].tolist(), gap_a[:200].tolist()
            n_sep = len(drop_a) + len(gap_a)
        else:
            short = _short_run(text, off, s, e)
            if short is None:
                continue
            drop_l, gap_l, first, last = short
            drops.extend(drop_l)
            gaps.extend(gap_l)
            n_sep = len(drop_l) + len(gap_l)
        spans.append((first, last + 1))
        if last + 1 - first - n_sep >= 5:   # five letters or more: "V.V.I.P" or "E-E-A-T" are no signal
            strong += 1
        if len(joined) < 8:
            joined.append(_render(text, first, last + 1, drop_l, gap_l))
    if not spans:
        return None
    keep = np.ones(n, bool)
    keep[np.concatenate([np.array(drops, np.int64), *long_drops])] = False
    chars = np.frombuffer(text.encode("utf-32-le"), "<u4").copy() if cps is None else cps.copy()
    chars[np.concatenate([np.array(gaps, np.int64), *long_gaps])] = 32
    out = chars[keep].tobytes().decode("utf-32-le")
    new_off = np.append(off[:-1][keep], off[-1])
    lo, hi = spans[0][0], spans[-1][1]
    return Rewrite(out, new_off, strong, int(off[lo]), int(off[hi - 1]) + 1, " | ".join(joined)[:80], capped)


_LONG_RUN = 256
_MAX_SPACED_RUNS = 2_000
_SEP_CODES = np.array([ord(c) for c in " ._-*~"], np.uint32)


def _short_run(text: str, off: np.ndarray, s: int, e: int) -> tuple[list[int], list[int], int, int] | None:
    """Drop and word-gap positions for one short run (plain Python)."""
    n = len(text)
    letters, seps = _split_run(text, s, e)
    # Trim letters that belong to a longer word on either side ("hello w o r l d").
    if s > 0 and text[s - 1].isalnum():
        letters, seps = letters[1:], seps[1:]
    if e < n and text[e].isalnum():
        letters, seps = letters[:-1], seps[:-1]
    if len(letters) < 4:
        return None
    dominant = Counter(text[a:b] for a, b in seps).most_common(1)[0][0]
    drop: list[int] = []
    gap: list[int] = []
    for a, b in seps:
        sep = text[a:b]
        wide = sep == " " and off[a + 1] - off[a] >= 2   # two or more spaces in the original
        if sep == dominant and not wide:
            drop.extend(range(a, b))
        else:
            gap.append(a)
            drop.extend(range(a + 1, b))
    return drop, gap, letters[0], letters[-1]


def _long_run(
    text: str, cps: np.ndarray, off: np.ndarray, s: int, e: int
) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """The same for a long run, vectorised (hostile input can make one run of a megabyte)."""
    n = len(text)
    letters = s + np.flatnonzero(~np.isin(cps[s:e], _SEP_CODES))
    if s > 0 and text[s - 1].isalnum():
        letters = letters[1:]
    if e < n and text[e].isalnum():
        letters = letters[:-1]
    if len(letters) < 4:
        return None
    a = letters[:-1] + 1                      # separator group [a, b)
    b = letters[1:]
    glen = b - a
    c = cps.astype(np.int64)
    key = c[a] | np.where(glen >= 2, c[np.minimum(a + 1, n - 1)], 0) << 8
    key |= np.where(glen >= 3, c[np.minimum(a + 2, n - 1)], 0) << 16
    vals, first, counts = np.unique(key, return_index=True, return_counts=True)
    dominant = vals[np.lexsort((first, -counts))[0]]     # most common; ties: the first seen
    wide = (key == 32) & (off[b] - off[a] >= 2)
    join = (key == dominant) & ~wide
    in_run = np.zeros(e - s, bool)
    in_run[letters - s] = True
    sep_pos = s + np.flatnonzero(~in_run)
    sep_pos = sep_pos[(sep_pos > letters[0]) & (sep_pos < letters[-1])]
    gap = a[~join]
    drop = np.setdiff1d(sep_pos, gap, assume_unique=True)
    return drop.astype(np.int64), gap.astype(np.int64), int(letters[0]), int(letters[-1])


def _render(text: str, s: int, e: int, drop: list[int], gap: list[int]) -> str:
    """The joined words of one run, for the signal's detail."""
    drop_set = set(drop)
    gap_set = set(gap)
    out = []
    for i in range(s, min(e, s + 200)):
        if i in gap_set:
            out.append(" ")
        elif i not in drop_set:
            out.append(text[i])
    return "".join(out)


def _split_run(text: str, s: int, e: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Letter positions and separator spans of a matched spaced run."""
    letters: list[int] = []
    seps: list[tuple[int, int]] = []
    i = s
    while i < e:
        letters.append(i)
        j = i + 1
        while j < e and not text[j].isalpha():
            j += 1
        if j < e:
            seps.append((i + 1, j))
        i = j
    return letters, seps
