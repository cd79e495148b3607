"""The normalised views of one text that every detector reads."""

from __future__ import annotations

from dataclasses import dataclass, field


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

