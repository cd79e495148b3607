"""Build every view of one text: original, folded, deleet, despaced and decoded segments.

The folded view is always present; ``deleet`` and ``despaced`` only when they differ from it;
decoded views carry ``origin``, the encoded run in the original. Signals collect what looked
deliberate on the way (invisible characters, tag characters, bidi controls, homoglyphs, combining
stacks, leetspeak, spaced letters, encoded natural language).
"""

from __future__ import annotations

import numpy as np

from aimds.normalize.decoders import decode_views
from aimds.normalize.fold import fold
from aimds.normalize.leet import deleet, despace
from aimds.normalize.views import Limits, Signal, View, Views


def warm_up() -> None:
    """Build the lazily loaded tables now (a few tens of ms) instead of on the first request."""
    from aimds.normalize.decoders import _candidates_re
    from aimds.normalize.fold import tables
    from aimds.normalize.words import (
        atbash_words,
        reversed_words,
        scrambled_words,
        shifted_words,
        unscramble_table,
    )

    tables()
    shifted_words()
    reversed_words()
    atbash_words()
    scrambled_words()
    unscramble_table()
    _candidates_re(Limits().min_encoded_len)


def _as_tuple(off: np.ndarray) -> tuple[int, ...]:
    return tuple(off.tolist())


def build_views(text: str, limits: Limits) -> Views:
    """All views of ``text`` within ``limits`` (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    n = len(text)
    f = fold(text)
    off = f.offsets_array(n)
    folded = View("folded", f.text, tuple(range(n + 1)) if f.offsets is None else _as_tuple(off))
    views: list[View] = [View("original", text), folded]
    signals: list[Signal] = list(f.signals)
    notes: list[str] = []

    dl = deleet(f.text, off)
    if dl is not None and dl.text != f.text:
        same = dl.offsets is off          # one-for-one changes only: share the folded offsets
        views.append(View("deleet", dl.text, folded.offsets if same else _as_tuple(dl.offsets)))
        signals.append(Signal("leet", dl.start, dl.end, dl.count, dl.detail))
        if dl.capped:
            notes.append("deleet: too many leet tokens, the rest left as they were")
    ds = despace(f.text, off)
    if ds is not None and ds.text != f.text:
        views.append(View("despaced", ds.text, _as_tuple(ds.offsets)))
        if ds.count:
            signals.append(Signal("spaced", ds.start, ds.end, ds.count, ds.detail))
        if ds.capped:
            notes.append("despace: too many spaced runs, the rest left as they were")

    try:
        dec = decode_views(text, folded, limits)
    except Exception as exc:  # a decoder bug must not take the request down
        notes.append(f"decoding failed: {type(exc).__name__}")
    else:
        views.extend(dec.views)
        signals.extend(dec.signals)
        notes.extend(dec.notes)
    return Views(original=text, views=tuple(views), signals=tuple(signals), truncated=bool(notes),
                 notes=tuple(notes))
