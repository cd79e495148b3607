"""Character folding that keeps a map back to the original text.

``fold(text)`` returns the folded text and, for every folded character, the index of the original
character it came from. The work is table driven and vectorised with numpy, so the cost is a few
C-speed passes over the text whatever it contains:

1. one ``str.translate`` with a generated per-code-point table (``_tables.FOLD``: NFKC, casefold,
   styled letters such as circled/small-capital/mathematical, zero-width/bidi/format/control
   characters removed, Unicode tag characters decoded to ASCII); the length of each character's
   replacement (a numpy lookup) gives the offsets by ``np.repeat``;
2. combining marks left on an ASCII letter (decomposed accents, "zalgo" stacks) are dropped;
3. whitespace runs collapse to one space, or to ``"\\n"`` when the run holds a line break;
4. look-alike letters of other scripts (Cyrillic, Greek, Armenian, Cherokee) are folded to ASCII
   inside words that mix them with ASCII letters; words wholly in another script stay as they are.

The suspicious things seen on the way are returned as :class:`~aimds.normalize.views.Signal`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

import numpy as np
import re2

from aimds.normalize.views import Signal

WS_SPACE, WS_NL, INVIS, BIDI, TAG, SOFT, STYLED, MARK, CONF, FOREIGN, WORD, CHANGED = (1 << i for i in range(12))

_BOM = 0xFEFF
_WAVING_FLAG = 0x1F3F4          # emoji flag tag sequences (England, Scotland, Wales) start with it
_CANCEL_TAG = 0xE007F


@dataclass(slots=True)
class Tables:
    """Lookup tables built once from the generated ``_tables`` module."""

    fold: dict[int, str]
    ascii_fold: dict[int, str]
    length: np.ndarray          # uint8 per code point: length of its folded replacement
    cls: np.ndarray             # uint16 per code point: class bits
    cross: dict[str, str]       # look-alike (lowercase) -> ASCII
    upper: dict[str, str]       # capital look-alike (original) -> ASCII


@cache
def tables() -> Tables:
    """Build (once) the numpy lookup tables; about 3 MB, a few milliseconds."""
    from aimds.normalize import _tables as t

    length = np.ones(0x110000, np.uint8)
    keys = np.fromiter(t.FOLD.keys(), np.int64, len(t.FOLD))
    length[keys] = np.fromiter((len(v) for v in t.FOLD.values()), np.uint8, len(t.FOLD))
    cls = np.zeros(0x110000, np.uint16)
    for lo, hi, bits in t.CLASS_RANGES:
        cls[lo:hi] = bits
    return Tables(
        fold=t.FOLD,
        ascii_fold={k: v for k, v in t.FOLD.items() if k < 128},
        length=length,
        cls=cls,
        cross=dict(t.CROSS_SCRIPT),
        upper=dict(t.UPPER_ONLY),
    )


@dataclass(slots=True)
class Folded:
    """A folded text, its offsets (``None`` = identity) and the signals seen while folding."""

    text: str
    offsets: np.ndarray | None   # int64, len(text) + 1 entries; the last is len(original)
    signals: list[Signal]

    def offsets_array(self, original_len: int) -> np.ndarray:
        """The offsets as an array even when they are the identity."""
        if self.offsets is None:
            return np.arange(original_len + 1, dtype=np.int64)
        return self.offsets


_ASCII_ODD = re2.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|[\n ][\n ]")


def fold(text: str, *, with_signals: bool = True) -> Folded:
    """Fold ``text`` (see the module docstring) keeping an offsets map to ``text``."""
    n = len(text)
    if text.isascii():
        raw = text.encode("ascii")
        if not _ASCII_ODD.search(raw) and not (n and (text[0] in " \n" or text[-1] in " \n")):
            return Folded(text.lower(), None, [])
        return _fold_general(text, np.frombuffer(raw, np.uint8), ascii_only=True, with_signals=with_signals)
    try:
        raw32 = text.encode("utf-32-le")
    except UnicodeEncodeError:
        # Lone surrogates: each becomes "?" (one for one, so positions hold). The UTF-8 codec
        # handles "replace" inline, which is far faster than a per-surrogate error callback.
        raw32 = text.encode("utf-8", "replace").decode("utf-8").encode("utf-32-le")
    return _fold_general(text, np.frombuffer(raw32, "<u4"), ascii_only=False, with_signals=with_signals)


def _decode(arr: np.ndarray, ascii_only: bool) -> str:
    if ascii_only:
        return arr.astype(np.uint8).tobytes().decode("ascii")
    return arr.astype("<u4").tobytes().decode("utf-32-le")


def _fold_general(text: str, cps: np.ndarray, *, ascii_only: bool, with_signals: bool) -> Folded:
    t = tables()
    n = len(text)
    lens = t.length[cps]
    signals: list[Signal] = []
    off: np.ndarray | None = None
    if ascii_only:
        t1 = text.translate(t.ascii_fold)
        if len(t1) != n:
            off = np.repeat(np.arange(n, dtype=np.int64), lens)
        c1 = np.frombuffer(t1.encode("ascii"), np.uint8)
    else:
        cls = t.cls[cps]
        changed = (cls & CHANGED) != 0
        if not changed.any():
            c1 = cps
        elif (lens == 1).all():
            # One-for-one replacements only (capitals, full-width forms...): no string pass needed.
            pos = np.flatnonzero(changed)
            uniq, inv = np.unique(cps[pos], return_inverse=True)
            rep = np.array([ord(t.fold[x]) for x in uniq.tolist()], np.uint32)
            c1 = cps.astype(np.uint32, copy=True)
            c1[pos] = rep[inv]
        else:
            off = np.repeat(np.arange(n, dtype=np.int64), lens)
            c1 = _expand(cps, lens, changed, t)
        if with_signals:
            signals.extend(_char_signals(text, cps, cls))
        c1, off, dropped = _drop_marks(c1, off, t)
        # Count only marks written as such, not those a fold made (casefolded "İ" is "i" + dot).
        dropped = dropped[(cls[dropped] & MARK) != 0] if len(dropped) else dropped
        if len(dropped) >= 3 and with_signals:
            signals.append(Signal("combining", *_span(dropped), len(dropped)))
    if with_signals and ascii_only:
        ctrl = np.flatnonzero(lens == 0)
        if len(ctrl):
            signals.append(Signal("invisible", int(ctrl[0]), int(ctrl[-1]) + 1, len(ctrl)))
    c2, off = _collapse_ws(c1, off)
    offsets = np.arange(len(c2), dtype=np.int64) if off is None else off
    if not ascii_only and len(c2) and int(c2.max()) >= 128:
        c2, changed = _fold_confusables(cps, c2, offsets, t)
        if len(changed) and with_signals:
            _merge_homoglyph(signals, changed)
    out = _decode(c2, ascii_only)
    return Folded(out, np.append(offsets, np.int64(n)), signals)


def _expand(cps: np.ndarray, lens: np.ndarray, changed: np.ndarray, t: Tables) -> np.ndarray:
    """``str.translate`` with the fold table, vectorised: one Python step per distinct changed character."""
    ends = np.cumsum(lens, dtype=np.int64)
    starts = ends - lens
    out = np.empty(int(ends[-1]) if len(ends) else 0, np.uint32)
    same = ~changed
    out[starts[same]] = cps[same]
    pos = np.flatnonzero(changed & (lens > 0))
    if len(pos):
        vals = cps[pos]
        order = np.argsort(vals, kind="stable")
        sorted_vals = vals[order]
        cut = np.flatnonzero(np.diff(sorted_vals)) + 1
        bounds = [0, *cut.tolist(), len(order)]
        group_starts = starts[pos[order]]
        for a, b in itertools.pairwise(bounds):
            rep = t.fold[int(sorted_vals[a])]
            where = group_starts[a:b]
            if len(rep) == 1:
                out[where] = ord(rep)
            else:
                for j, ch in enumerate(rep):
                    out[where + j] = ord(ch)
    return out


def _span(pos: np.ndarray) -> tuple[int, int]:
    return int(pos[0]), int(pos[-1]) + 1


def _char_signals(text: str, cps: np.ndarray, cls: np.ndarray) -> list[Signal]:
    """Signals for invisible, bidi, tag and styled characters (positions in the original)."""
    out: list[Signal] = []
    if not cls.any():
        return out
    invis = (cls & INVIS) != 0
    if invis.any() and cps[0] == _BOM:
        invis[0] = False
    if invis.any():
        invis &= ~_lone_variation_selectors(cps)
    soft = np.flatnonzero(cls & SOFT)
    if len(soft):
        prev_c = cps[np.maximum(soft - 1, 0)]
        next_c = cps[np.minimum(soft + 1, len(cps) - 1)]
        near_ascii = _is_ascii_alnum(prev_c) | _is_ascii_alnum(next_c)
        invis[soft[near_ascii]] = True
    pos = np.flatnonzero(invis)
    if len(pos):
        out.append(Signal("invisible", *_span(pos), len(pos)))
    pos = np.flatnonzero(cls & BIDI)
    if len(pos):
        out.append(Signal("bidi", *_span(pos), len(pos)))
    pos = np.flatnonzero(cls & TAG)
    if len(pos):
        pos = _suspicious_tags(cps, pos)
        if len(pos):
            shown = cps[pos[:200]].astype(np.int64) - 0xE0000
            detail = "".join(chr(c) for c in shown.tolist() if 0x20 <= c <= 0x7E)
            out.append(Signal("tag_chars", *_span(pos), len(pos), detail))
    pos = np.flatnonzero(cls & STYLED)
    if len(pos):
        out.append(Signal("homoglyph", *_span(pos), len(pos), "styled letters"))
    return out


def _is_variation_selector(c: np.ndarray) -> np.ndarray:
    return ((c >= 0xFE00) & (c <= 0xFE0F)) | ((c >= 0xE0100) & (c <= 0xE01EF))


def _lone_variation_selectors(cps: np.ndarray) -> np.ndarray:
    """Variation selectors used as Unicode means them: one, right after a visible character.

    An emoji's presentation selector (U+FE0F in "👍️", "❤️", keycaps "1️⃣") and an ideographic variation
    selector after a CJK character are ordinary text, not hidden characters; two or more in a row are
    not (bytes smuggled as selectors: ``decoders`` decodes runs of four or more).
    """
    vs = _is_variation_selector(cps)
    if not vs.any():
        return vs
    prev = np.concatenate(([False], vs[:-1]))
    nxt = np.concatenate((vs[1:], [False]))
    before = np.concatenate(([0x20], cps[:-1]))
    visible_base = (before > 0x20) & ~np.isin(before, (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF))
    return vs & ~prev & ~nxt & visible_base


def _is_ascii_alnum(c: np.ndarray) -> np.ndarray:
    return ((c >= 48) & (c <= 57)) | ((c | 32) >= 97) & ((c | 32) <= 122)


def _suspicious_tags(cps: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Tag positions minus those of emoji flag sequences (waving flag + tags + cancel tag)."""
    starts = np.flatnonzero(np.diff(pos, prepend=-2) != 1)
    if len(starts) > 1000:
        return pos
    keep = np.ones(len(pos), bool)
    bounds = [*starts.tolist(), len(pos)]
    for a, b in itertools.pairwise(bounds):
        first, last = int(pos[a]), int(pos[b - 1])
        if first > 0 and cps[first - 1] == _WAVING_FLAG and cps[last] == _CANCEL_TAG and b - a <= 8:
            keep[a:b] = False
    return pos[keep]


_NONE = np.zeros(0, np.int64)


def _drop_marks(
    c: np.ndarray, off: np.ndarray | None, t: Tables
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Drop combining marks whose base letter is ASCII (decomposed accents and zalgo stacks).

    Returns the new code points, offsets and the original positions of the dropped marks.
    """
    cls = t.cls[c]
    is_mark = (cls & MARK) != 0
    if not is_mark.any():
        return c, off, _NONE
    marks = np.flatnonzero(is_mark)
    bases = np.flatnonzero(~is_mark)
    if not len(bases):
        return c, off, _NONE
    k = np.searchsorted(bases, marks) - 1          # the last non-mark before each mark
    has_base = k >= 0
    base_c = c[bases[np.maximum(k, 0)]]
    low = base_c | 32
    drop_pos = marks[has_base & (low >= 97) & (low <= 122) & (base_c < 128)]
    if not len(drop_pos):
        return c, off, _NONE
    keep = np.ones(len(c), bool)
    keep[drop_pos] = False
    dropped = drop_pos.astype(np.int64) if off is None else off[drop_pos]
    new_off = np.flatnonzero(keep).astype(np.int64) if off is None else off[keep]
    return c[keep], new_off, dropped


def _collapse_ws(c: np.ndarray, off: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Collapse runs of spaces/newlines (already the only whitespace left) and strip the ends."""
    m = len(c)
    if m == 0:
        return c, off
    is_ws = (c == 32) | (c == 10)
    if not is_ws.any():
        return c, off
    prev_ws = np.empty(m, bool)
    prev_ws[0] = True
    prev_ws[1:] = is_ws[:-1]
    run_start = is_ws & ~prev_ws
    keep = ~is_ws | run_start
    if is_ws[-1]:
        starts = np.flatnonzero(run_start)
        if len(starts):
            keep[starts[-1]] = False
    if keep.all():
        # No run longer than one: only single spaces/newlines, nothing to change.
        return c, off
    run_id = np.cumsum(run_start)
    has_nl = np.zeros(int(run_id[-1]) + 1, bool)
    has_nl[run_id[c == 10]] = True
    vals = c.copy()
    rs = np.flatnonzero(run_start)
    vals[rs] = np.where(has_nl[run_id[rs]], 10, 32)
    new_off = np.flatnonzero(keep).astype(np.int64) if off is None else off[keep]
    return vals[keep], new_off


def _fold_confusables(
    orig_cps: np.ndarray, c: np.ndarray, offsets: np.ndarray, t: Tables
) -> tuple[np.ndarray, np.ndarray]:
    """Fold look-alike letters in mixed-script words (vectorised).

    ``c`` are the folded code points and ``offsets`` their original positions. Returns the new
    code points and the original positions of the folded letters.
    """
    cls = t.cls[c]
    conf = (cls & CONF) != 0
    if not conf.any():
        return c, _NONE
    low = c | 32
    ascii_letter = (low >= 97) & (low <= 122) & (c < 128)
    if not ascii_letter.any():
        return c, _NONE
    word = ((cls & WORD) != 0) | ascii_letter | ((c >= 48) & (c <= 57))
    prev = np.empty(len(c), bool)
    prev[0] = False
    prev[1:] = word[:-1]
    word_id = np.cumsum(word & ~prev)
    nwords = int(word_id[-1]) + 1
    length = np.bincount(word_id[word], minlength=nwords)
    n_ascii = np.bincount(word_id[ascii_letter], minlength=nwords)
    n_conf = np.bincount(word_id[conf & word], minlength=nwords)
    target = (n_ascii > 0) & (n_conf > 0) & (length >= 3)
    # A script used only for look-alike letters next to ASCII text (whole words spelt with
    # Cyrillic а/е/о/р/с amid English) is folded too; real Russian or Greek text always has letters
    # without a Latin twin, so it is left alone.
    foreign_plain = ((cls & FOREIGN) != 0) & ~conf
    if not foreign_plain.any():
        target |= (n_conf == length) & (length >= 3)
    pos = np.flatnonzero(conf & word & target[word_id])
    if not len(pos):
        return c, _NONE
    orig = orig_cps[offsets[pos]]
    u_orig, inv_orig = np.unique(orig, return_inverse=True)
    rep_upper = np.array([ord(t.upper.get(chr(x), "\0")) for x in u_orig.tolist()], np.uint32)
    u_cur, inv_cur = np.unique(c[pos], return_inverse=True)
    rep_cross = np.array([ord(t.cross.get(chr(x), "\0")) for x in u_cur.tolist()], np.uint32)
    rep = rep_upper[inv_orig]
    rep = np.where(rep != 0, rep, rep_cross[inv_cur])
    ok = rep != 0
    if not ok.any():
        return c, _NONE
    out = c.astype(np.uint32, copy=True)
    out[pos[ok]] = rep[ok]
    return out, offsets[pos[ok]]


def _merge_homoglyph(signals: list[Signal], changed: np.ndarray) -> None:
    """Add the mixed-script positions (original coordinates) to the homoglyph signal."""
    lo, hi = int(changed.min()), int(changed.max())
    for k, s in enumerate(signals):
        if s.kind == "homoglyph":
            signals[k] = Signal("homoglyph", min(s.start, lo), max(s.end, hi + 1), s.count + len(changed),
                                "mixed-script and styled letters")
            return
    signals.append(Signal("homoglyph", lo, hi + 1, len(changed), "mixed-script words"))


def apply_edits(text: str, off: np.ndarray, edits: list[tuple[int, int, str]]) -> tuple[str, np.ndarray]:
    """Apply sorted, non-overlapping ``(start, end, replacement)`` edits to ``text`` and its offsets.

    ``off`` has ``len(text) + 1`` entries. A replacement as long as the span it replaces maps
    character by character; any other maps all its characters to the span's first offset.
    """
    pieces: list[str] = []
    idx: list[np.ndarray] = []
    pos = 0
    for s, e, rep in edits:
        pieces.append(text[pos:s])
        idx.append(np.arange(pos, s, dtype=np.int64))
        pieces.append(rep)
        if len(rep) == e - s:
            idx.append(np.arange(s, e, dtype=np.int64))
        else:
            idx.append(np.full(len(rep), s, dtype=np.int64))
        pos = e
    pieces.append(text[pos:])
    idx.append(np.arange(pos, len(text) + 1, dtype=np.int64))
    return "".join(pieces), off[np.concatenate(idx)]
