"""The normalised views of one text that every detector reads."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

#: Decodings not read in place of their run (:meth:`Views.decoded_in_place`): inline escapes (their view
#: repeats the text around the escapes) and word-order reversal (never a signal of its own).
NOT_IN_PLACE = frozenset({"url", "html", "unicode_escape", "reversed_words"})


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep normalisation linear and fast on hostile input."""

    max_decode_depth: int = 4          # nested encodings followed (base64 in hex in url...)
    max_decoded_chars: int = 64_000    # total characters of decoded segments kept
    max_segments: int = 32             # decoded segments kept
    min_encoded_len: int = 16          # shortest candidate for base64/base32/hex decoding
    time_budget_ms: float = 20.0       # decoding stops (and says so) past this


@dataclass(frozen=True, slots=True)
class View:
    """One rendering of the text.

    ``offsets`` maps each character index of ``text`` to the index in the original text it came
    from; ``offsets`` has ``len(text) + 1`` entries (the last is the end of the source range).
    Decoded segments map every character to the span of the encoded run they came from.
    """

    name: str                 # "original", "folded", "deleet", "despaced", "decoded"
    text: str
    offsets: tuple[int, ...] | None = None   # None means identity (the original view)
    source: str = ""          # for decoded views: the decoding chain, e.g. "base64>hex"
    depth: int = 0
    origin: tuple[int, int] | None = None    # for decoded views: the encoded run in the original

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` range in this view to the original text."""
        if self.origin is not None:
            return self.origin
        if self.offsets is None:
            return start, end
        n = len(self.offsets) - 1
        start = max(0, min(start, n))
        end = max(start, min(end, n))
        if end == start:
            return self.offsets[start], self.offsets[start]
        return self.offsets[start], self.offsets[end - 1] + 1


@dataclass(frozen=True, slots=True)
class Signal:
    """Something suspicious that normalisation itself saw (invisible characters, an encoding)."""

    kind: str                 # "invisible", "tag_chars", "bidi", "homoglyph", "encoded:base64", ...
    start: int                # span in the original text
    end: int
    count: int = 1
    detail: str = ""          # e.g. the decoded text (redacted/shortened by the reporter)


@dataclass(frozen=True, slots=True)
class Views:
    """All views of one text plus the signals seen while building them."""

    original: str
    views: tuple[View, ...]
    signals: tuple[Signal, ...] = ()
    truncated: bool = False   # a decoding bound was hit; ``notes`` says which
    notes: tuple[str, ...] = field(default=())

    def get(self, name: str) -> View | None:
        """The first view called ``name``, if any."""
        for v in self.views:
            if v.name == name:
                return v
        return None

    @property
    def folded(self) -> View:
        """The folded view (always present)."""
        v = self.get("folded")
        if v is None:  # pragma: no cover - normalize() always builds it
            raise LookupError("no folded view")
        return v

    def decoded_in_place(self) -> list[tuple[int, int, str]]:
        """``(start, end, decoding)`` in folded offsets for each encoded run that decoded to natural language.

        Read in place of its run, a text says what its encoded part says: a hidden instruction reads as
        one, and harmless encoded text is not judged by its surface (the models read base64, Morse or
        Braille blobs as attacks whatever they hold). The deepest natural decoding of a run is used
        (base64 > hex > text: the text); the runs returned are disjoint, the longest kept first.
        """
        natural = {(g.kind[len("encoded:"):], g.start, g.end) for g in self.signals if g.kind.startswith("encoded:")}
        if not natural:
            return []
        best: dict[tuple[int, int], tuple[int, str]] = {}
        for v in self.views:
            if v.name != "decoded" or v.origin is None:
                continue
            step = v.source.rsplit(">", 1)[-1]
            if step in NOT_IN_PLACE or (step, *v.origin) not in natural:
                continue
            if v.origin not in best or v.depth > best[v.origin][0]:
                best[v.origin] = (v.depth, v.text)
        if not best:
            return []
        folded = self.folded
        offsets = folded.offsets if folded.offsets is not None else range(len(folded.text) + 1)
        out: list[tuple[int, int, str]] = []
        for (os_, oe), (_, text) in sorted(best.items(), key=lambda kv: kv[0][0] - kv[0][1]):
            fs = bisect.bisect_left(offsets, os_, 0, len(folded.text))
            fe = bisect.bisect_left(offsets, oe, 0, len(folded.text))
            if fe > fs and not any(s < fe and fs < e for s, e, _ in out):
                out.append((fs, fe, text))
        return sorted(out)
