"""Decoders for encoded runs: base64/base32/hex/binary/morse, inline escapes, variation-selector
smuggling, Braille, upside-down text, rot13/Caesar, Atbash, reversal, scrambled words.

``decode_views`` finds candidate runs in the original text with RE2 (linear time), decodes them,
keeps the decodings that are mostly printable text as ``decoded`` views, and follows nested
encodings up to ``Limits.max_decode_depth``. Every bound in :class:`~aimds.normalize.views.Limits`
is enforced here (depth, total decoded characters, segment count, wall clock); hitting one sets
``truncated`` and adds a note. rot13/Caesar shifts and reversed text are tried on the folded
text only when the decoding holds clearly more common English words than the input.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from html.entities import html5

import re2

from aimds.normalize.fold import fold
from aimds.normalize.views import Limits, Signal, View
from aimds.normalize.words import (
    atbash,
    atbash_words,
    caesar,
    common_words,
    reversed_words,
    scramble_key,
    scrambled_words,
    shifted_words,
    unscramble_table,
)

_MAX_ATTEMPTS = 512          # candidate runs tried per text (garbage candidates cost time too)
_SAMPLE = 4000               # characters inspected by the text-likeness checks

_ESC = (r"%[0-9a-fA-F]{2}|&#[0-9]{1,7};|&#[xX][0-9a-fA-F]{1,6};|&[a-zA-Z][a-zA-Z0-9]{1,30};"
        r"|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|\\u\{[0-9a-fA-F]{1,6}\}|\\x[0-9a-fA-F]{2}")
_INLINE = rf"\S*(?:{_ESC})\S*(?:\s+\S*(?:{_ESC})\S*)*"
_BINARY = r"[01]{6,8}(?:[ ,]{1,2}[01]{6,8}){3,}|[01]{32,}"
_MORSE = r"[.\-]{1,7}(?:(?: {1,3}| ?/ ?| ?\| ?)[.\-]{1,7}){5,}"
_HEX = r"(?:(?:0[xX]|\\x)?[0-9a-fA-F]{2}[ ,:;\-]{0,2}){4,}"
_B64 = r"[A-Za-z0-9+/_\-]{%d,}={0,2}"
# Bytes hidden as Unicode variation selectors (VS1-16 = bytes 0-15, VS17-256 = bytes 16-255), usually
# trailing one emoji: invisible when rendered, kept by most text pipelines. Real text never puts four
# selectors in a row (one follows an emoji or an ideograph), so runs of four or more are decoded.
_VARIATION = r"[\x{FE00}-\x{FE0F}\x{E0100}-\x{E01EF}]{4,}"
# Grade-1 Braille cells (U+2800 block): letters, the number sign, the capital sign.
_BRAILLE = r"[\x{2801}-\x{28FF}][\x{2800}-\x{28FF} ]{5,}"
_BRAILLE_LETTERS = dict(zip((0x01, 0x03, 0x09, 0x19, 0x11, 0x0B, 0x1B, 0x13, 0x0A, 0x1A, 0x05, 0x07, 0x0D, 0x1D,
                             0x15, 0x0F, 0x1F, 0x17, 0x0E, 0x1E, 0x25, 0x27, 0x3A, 0x2D, 0x3D, 0x35),
                            "abcdefghijklmnopqrstuvwxyz", strict=True))
_BRAILLE_PUNCT = {0x02: ",", 0x06: ";", 0x12: ":", 0x32: ".", 0x26: "?", 0x16: "!", 0x04: "'", 0x24: "-"}
# Upside-down text: letters turned 180 degrees, then the whole run reversed. The turned letters below
# must appear three times; the ASCII letters that are their own (or each other's) turned form may fill in.
_TURNED = {"ɐ": "a", "ɔ": "c", "ǝ": "e", "ɟ": "f", "ƃ": "g", "ɥ": "h", "ᴉ": "i", "ı": "i", "ɾ": "j", "ʞ": "k",
           "ɯ": "m", "ɹ": "r", "ʇ": "t", "ʌ": "v", "ʍ": "w", "ʎ": "y", "ʃ": "l", "¿": "?", "¡": "!", "˙": "."}
_TURNED_ASCII = {"b": "q", "q": "b", "d": "p", "p": "d", "n": "u", "u": "n", "'": ",", ",": "'"}
_TURNED_TABLE = str.maketrans({**_TURNED, **_TURNED_ASCII})
_TURNED_CLASS = "".join(_TURNED)
_TURNED_FILL = f"[{_TURNED_CLASS}bdlnopqsuxz0-9 ,.'!?]*"
_TURNED_RUN = f"{_TURNED_FILL}(?:[{_TURNED_CLASS}]{_TURNED_FILL}){{3,}}"


@cache
def _candidates_re(min_len: int) -> tuple[re2._Regexp, tuple[tuple[str, re2._Regexp], ...]]:
    """One pattern for "is there any candidate" and one per kind, in priority order.

    No capture groups: RE2 then finds matches with its DFA alone, fast even on megabyte runs.
    """
    b64 = _B64 % max(min_len, 8)
    kinds = (("variation_selectors", _VARIATION), ("braille", _BRAILLE), ("upside_down", _TURNED_RUN),
             ("inline", _INLINE), ("binary", _BINARY), ("morse", _MORSE), ("hex", _HEX), ("base64", b64))
    anyone = re2.compile("|".join(f"(?:{p})" for _, p in kinds))
    return anyone, tuple((k, re2.compile(p)) for k, p in kinds)


def _candidates(text: str, min_len: int) -> Iterator[tuple[int, int, int, str]]:
    """Candidate runs of every kind, lazily, ordered by start then priority: (start, prio, end, kind)."""
    _any, per_kind = _candidates_re(min_len)

    def runs(prio: int, kind: str, rx: re2._Regexp) -> Iterator[tuple[int, int, int, str]]:
        for m in rx.finditer(text):
            s, e = m.span()
            yield s, prio, e, kind

    return heapq.merge(*(runs(i, k, rx) for i, (k, rx) in enumerate(per_kind)))


_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=")
_HEX_CHARS = frozenset("0123456789abcdefABCDEF")
_B32_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=")

_PCT_RE = re2.compile(r"(?:%[0-9a-fA-F]{2})+")
_HTML_RE = re2.compile(r"&#[0-9]{1,7};|&#[xX][0-9a-fA-F]{1,6};|&[a-zA-Z][a-zA-Z0-9]{1,30};")
_UESC_RE = re2.compile(r"\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|\\u\{[0-9a-fA-F]{1,6}\}")
_XESC_RE = re2.compile(r"(?:\\x[0-9a-fA-F]{2})+")

_MORSE_TABLE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g", "....": "h",
    "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n", "---": "o", ".--.": "p",
    "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u", "...-": "v", ".--": "w", "-..-": "x",
    "-.--": "y", "--..": "z", "-----": "0", ".----": "1", "..---": "2", "...--": "3", "....-": "4",
    ".....": "5", "-....": "6", "--...": "7", "---..": "8", "----.": "9", ".-.-.-": ".", "--..--": ",",
    "..--..": "?", "-.-.--": "!", "-..-.": "/", ".----.": "'", "---...": ":",
}


@dataclass(slots=True)
class _Ctx:
    original: str
    limits: Limits
    deadline: float
    views: list[View] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chars: int = 0
    attempts: int = 0
    stopped: bool = False
    seen: set[tuple[str, tuple[int, int]]] = field(default_factory=set)

    def bound(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def over_time(self) -> bool:
        if time.perf_counter() > self.deadline:
            self.bound(f"time_budget_ms={self.limits.time_budget_ms:g} reached: decoding stopped")
            self.stopped = True
        return self.stopped


@dataclass(slots=True)
class DecodeResult:
    """What ``decode_views`` found."""

    views: list[View]
    signals: list[Signal]
    notes: list[str]

    @property
    def truncated(self) -> bool:
        """Whether a bound was hit."""
        return bool(self.notes)


def decode_views(original: str, folded: View, limits: Limits, start: float | None = None) -> DecodeResult:
    """Decoded views of ``original`` (encoded runs) and of ``folded`` (rot13/Caesar/reversed)."""
    # Lazily built tables are made before the clock starts: the budget is for decoding work.
    _candidates_re(limits.min_encoded_len)
    shifted_words()
    reversed_words()
    atbash_words()
    scrambled_words()
    t0 = time.perf_counter() if start is None else start
    ctx = _Ctx(original, limits, t0 + limits.time_budget_ms / 1000.0)
    _scan(ctx, original, "", 0, None)
    if not ctx.stopped:
        for kind, s, e, text in shifted_segments(folded.text):
            o = folded.to_original(s, e)
            _add(ctx, kind, text, 1, o, natural=kind != "reversed_words", fold_it=False)
    return DecodeResult(ctx.views, ctx.signals, ctx.notes)


def _scan(ctx: _Ctx, text: str, chain: str, depth: int, origin: tuple[int, int] | None) -> None:
    """Find and decode the encoded runs of ``text`` (nesting level ``depth``)."""
    if ctx.stopped:
        return
    text = _utf8_safe(text)
    anyone, _ = _candidates_re(ctx.limits.min_encoded_len)
    if not anyone.search(text):
        return
    inline: list[tuple[int, int, str, str, int]] = []
    done_until = -1          # end of the last run that decoded: overlapping candidates are skipped
    for s, _prio, e, kind in _candidates(text, ctx.limits.min_encoded_len):
        if s < done_until:
            continue
        if ctx.stopped or ctx.over_time():
            return
        ctx.attempts += 1
        if ctx.attempts > _MAX_ATTEMPTS:
            ctx.bound(f"more than {_MAX_ATTEMPTS} candidate runs: the rest were not decoded")
            ctx.stopped = True
            break
        cap = _run_cap(kind, ctx.limits)
        if e - s > cap:
            e = s + cap
            ctx.bound(f"an encoded run longer than {cap} characters was cut")
        got = _decode_run(kind, text, s, e, ctx.limits.min_encoded_len)
        if got is None:
            continue
        step, decoded, escapes = got
        done_until = e
        if depth + 1 > ctx.limits.max_decode_depth:
            ctx.bound(f"max_decode_depth={ctx.limits.max_decode_depth} reached: deeper encodings not decoded")
            return
        if kind == "inline":
            inline.append((s, e, step, decoded, escapes))
            continue
        o = origin if origin is not None else (s, e)
        _follow(ctx, step, decoded, chain, depth, o, natural=_natural(decoded))
    if inline and not ctx.stopped:
        _add_inline(ctx, text, inline, chain, depth, origin)


def _utf8_safe(text: str) -> str:
    """``text`` with lone surrogates as "?" (RE2 needs UTF-8); same length, same positions."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _follow(ctx: _Ctx, step: str, decoded: str, chain: str, depth: int, o: tuple[int, int], *,
            natural: bool, shown: str | None = None) -> None:
    """Keep one decoding as a view, then look inside it for further encodings."""
    new_chain = f"{chain}>{step}" if chain else step
    if (new_chain, o) in ctx.seen:
        return
    ctx.seen.add((new_chain, o))
    view = _add(ctx, step, decoded if shown is None else shown, depth + 1, o, natural=natural, chain=new_chain)
    if view is None:
        return
    _scan(ctx, decoded, new_chain, depth + 1, o)
    if depth + 1 < ctx.limits.max_decode_depth and not ctx.stopped:
        for kind2, _s, _e, text2 in shifted_segments(view.text):
            _add(ctx, kind2, text2, depth + 2, o, natural=kind2 != "reversed_words",
                 chain=f"{new_chain}>{kind2}", fold_it=False)


_CONTEXT = 120   # characters of plain text kept around inline escapes in their decoded view


def _add_inline(ctx: _Ctx, text: str, runs: list[tuple[int, int, str, str, int]], chain: str, depth: int,
                origin: tuple[int, int] | None) -> None:
    """One view for all inline-escape runs of ``text``, shown with the plain text around them."""
    lo = max(0, runs[0][0] - _CONTEXT)
    hi = min(len(text), runs[-1][1] + _CONTEXT)
    pieces: list[str] = []
    pos = lo
    for s, e, _step, decoded, _k in runs:
        pieces.append(text[pos:s])
        pieces.append(decoded)
        pos = e
    pieces.append(text[pos:hi])
    escapes = sum(r[4] for r in runs)
    step = max(runs, key=lambda r: r[4])[2]
    o = origin if origin is not None else (runs[0][0], runs[-1][1])
    decoded_runs = " ".join(r[3] for r in runs)
    # Escaping plain letters and digits has no purpose but hiding them.
    natural = escapes >= 3 and sum(map(str.isalpha, decoded_runs)) >= 3
    _follow(ctx, step, decoded_runs, chain, depth, o, natural=natural, shown="".join(pieces))


def _add(ctx: _Ctx, step: str, decoded: str, depth: int, origin: tuple[int, int], *, natural: bool,
         chain: str | None = None, fold_it: bool = True) -> View | None:
    """Record one decoded view (and its signal) within the size and count bounds."""
    lim = ctx.limits
    if len(ctx.views) >= lim.max_segments:
        ctx.bound(f"max_segments={lim.max_segments} reached: further decoded segments dropped")
        ctx.stopped = True
        return None
    room = lim.max_decoded_chars - ctx.chars
    if room <= 0:
        ctx.bound(f"max_decoded_chars={lim.max_decoded_chars} reached: further decoded text dropped")
        ctx.stopped = True
        return None
    if len(decoded) > room:
        decoded = decoded[:room]
        ctx.bound(f"max_decoded_chars={lim.max_decoded_chars} reached: a decoded segment was cut")
    text = fold(decoded, with_signals=False).text if fold_it else decoded
    ctx.chars += len(text)
    s, e = origin
    offsets = (s,) * len(text) + (e,)
    view = View("decoded", text, offsets, source=chain or step, depth=depth, origin=origin)
    ctx.views.append(view)
    if natural:
        ctx.signals.append(Signal(f"encoded:{step}", s, e, 1, text[:80]))
    return view


# -- individual decoders ---------------------------------------------------------------------------

_SLOW_KINDS = ("inline", "binary", "morse")   # decoded group by group in Python
_SLOW_CAP = 24_000


def _run_cap(kind: str, limits: Limits) -> int:
    """Longest run worth decoding: its decoding could not be kept beyond ``max_decoded_chars``."""
    cap = 2 * limits.max_decoded_chars + 16
    return min(cap, _SLOW_CAP) if kind in _SLOW_KINDS else cap


def _decode_run(kind: str, text: str, s: int, e: int, min_len: int) -> tuple[str, str, int] | None:
    """Decode one candidate run: ``(step name, decoded text, escapes count)`` or ``None``."""
    run = text[s:e]
    if kind == "variation_selectors":
        out = _bytes_text(_variation_bytes(run))
        return ("variation_selectors", out, 0) if out is not None and _texty(out) else None
    if kind in ("braille", "upside_down"):
        out = _braille(run) if kind == "braille" else run.translate(_TURNED_TABLE)[::-1]
        return (kind, out, 0) if _enough_words(out) else None
    if kind == "inline":
        return _decode_inline(run)
    if kind == "binary":
        out = _bytes_text(_binary_bytes(run))
        return ("binary", out, 0) if out is not None and _texty(out) else None
    if kind == "morse":
        out = _morse(run)
        return ("morse", out, 0) if out is not None else None
    if kind == "hex":
        prefixed = "x" in run or "X" in run
        data = _hex_bytes(run)
        if data is not None and (len(data) >= 4 if prefixed else len(data) * 2 >= min_len):
            out = _bytes_text(data)
            if out is not None and _texty(out):
                return "hex", out, 0
        return None
    if len(run) < min_len:
        return None
    if set(run) <= _B32_CHARS and len(run.rstrip("=")) % 8 in (0, 2, 4, 5, 7):
        out = _bytes_text(_b32(run))
        if out is not None and _texty(out):
            return "base32", out, 0
    if set(run) <= _HEX_CHARS and len(run) % 2 == 0:
        out = _bytes_text(_hex_bytes(run))
        if out is not None and _texty(out):
            return "hex", out, 0
    out = _bytes_text(_b64(run))
    if out is not None and _texty(out):
        return "base64", out, 0
    return None


_VARIATION_BYTES = {**{0xFE00 + b: b for b in range(16)}, **{0xE0100 + b - 16: b for b in range(16, 256)}}


def _braille(run: str) -> str:
    """Grade-1 Braille to letters (the number sign turns a-j into digits until the next space)."""
    out: list[str] = []
    number = False
    for ch in run:
        cell = ord(ch) - 0x2800
        if ch == " " or cell == 0:
            out.append(" ")
            number = False
        elif cell == 0x3C:
            number = True
        elif cell == 0x20:
            continue
        elif cell in _BRAILLE_LETTERS:
            letter = _BRAILLE_LETTERS[cell]
            out.append(str((ord(letter) - 96) % 10) if number and letter <= "j" else letter)
        else:
            out.append(_BRAILLE_PUNCT.get(cell, "?"))
    return "".join(out)


def _enough_words(text: str) -> bool:
    """At least two common English words and most words common: a real decoding, not letter soup."""
    words, common = _words(text), common_words()
    hits = sum(1 for w in words if w in common)
    return hits >= 2 and hits >= 0.4 * len(words)


def _variation_bytes(run: str) -> bytes:
    """The bytes a run of variation selectors stands for (U+FE00.. = 0..15, U+E0100.. = 16..255)."""
    return run.translate(_VARIATION_BYTES).encode("latin-1")


def _b64(run: str) -> bytes | None:
    s = run.rstrip("=")
    if "-" in s or "_" in s:
        s = s.replace("-", "+").replace("_", "/")
    if len(s) % 4 == 1:
        s = s[:-1]
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b32(run: str) -> bytes | None:
    s = run.rstrip("=")
    s += "=" * (-len(s) % 8)
    try:
        return base64.b32decode(s)
    except (binascii.Error, ValueError):
        return None


_HEX_SEPS = str.maketrans("", "", " ,:;-\t\n")


def _hex_bytes(run: str) -> bytes | None:
    s = run.replace("\\x", "").replace("0x", "").replace("0X", "").translate(_HEX_SEPS)
    if len(s) % 2:
        s = s[:-1]
    try:
        return bytes.fromhex(s)
    except ValueError:
        return None


def _binary_bytes(run: str) -> bytes | None:
    groups = run.replace(",", " ").split()
    if len(groups) == 1:
        g = groups[0]
        if len(g) % 8:
            return None
        groups = [g[i:i + 8] for i in range(0, len(g), 8)]
    vals = [int(g, 2) for g in groups if len(g) in (7, 8)]
    if len(vals) < 4:
        return None
    return bytes(vals)


def _morse(run: str) -> str | None:
    if "." not in run or "-" not in run:
        return None
    words = run.replace("|", "/").split("/")
    out_words = []
    for w in words:
        letters = [_MORSE_TABLE.get(code) for code in w.split()]
        out_words.append("".join(c for c in letters if c))
    out = " ".join(w for w in out_words if w)
    if len(out.replace(" ", "")) < 4 or len(set(out) - {" "}) < 3:
        return None
    return out


def _decode_inline(run: str) -> tuple[str, str, int] | None:
    """Undo URL percent-encoding, HTML entities, \\u and \\x escapes in one run."""
    steps: list[str] = []
    escapes = 0
    out = run
    if "%" in out and _PCT_RE.search(out):
        new, k = _sub_count(_PCT_RE, _pct, out)
        if new != out:
            out, escapes = new, escapes + k
            steps.append("url")
    if "&" in out and _HTML_RE.search(out):
        new, k = _sub_count(_HTML_RE, _html, out)
        if new != out:
            out, escapes = new, escapes + k
            steps.append("html")
    if "\\u" in out or "\\U" in out:
        new, k = _sub_count(_UESC_RE, _uesc, out)
        if new != out:
            out, escapes = new, escapes + k
            steps.append("unicode_escape")
    if "\\x" in out:
        new, k = _sub_count(_XESC_RE, _xesc, out)
        if new != out:
            out, escapes = new, escapes + k
            steps.append("hex")
    if not steps or not _texty(out.replace("\ufffd", "")):
        return None
    return ">".join(steps), out, escapes


def _sub_count(rx: re2._Regexp, fn: object, text: str) -> tuple[str, int]:
    """``rx.sub(fn, text)`` plus the number of escapes that stood for an ASCII letter or digit."""
    hits = [0]

    def repl(m: object) -> str:
        r = fn(m.group(0))  # type: ignore[attr-defined, operator]
        hits[0] += sum(1 for c in r if c.isascii() and c.isalnum())
        return r

    return rx.sub(repl, text), hits[0]


def _pct(s: str) -> str:
    return bytes.fromhex(s.replace("%", "")).decode("utf-8", "replace")


def _html(s: str) -> str:
    body = s[1:-1]
    try:
        if body[:2] in ("#x", "#X"):
            return _chr(int(body[2:], 16))
        if body[:1] == "#":
            return _chr(int(body[1:]))
    except ValueError:
        return s
    return html5.get(body + ";", s)


def _uesc(s: str) -> str:
    digits = s[2:].strip("{}")
    return _chr(int(digits, 16))


def _xesc(s: str) -> str:
    return bytes.fromhex(s.replace("\\x", "")).decode("utf-8", "replace")


def _chr(cp: int) -> str:
    return chr(cp) if 0 < cp < 0x110000 and not 0xD800 <= cp < 0xE000 else "\ufffd"


def _bytes_text(data: bytes | None) -> str | None:
    """Bytes as text when they are UTF-8 (a cut trailing character is allowed)."""
    if not data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.start > 0:
            try:
                return data[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


# -- text-likeness -------------------------------------------------------------------------------

_INVISIBLE_DEL = dict.fromkeys([*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
                                 0xFEFF, 0x00AD, *range(0xFE00, 0xFE10)])


def _ascii_table(pred: Callable[[str], bool]) -> bytes:
    return bytes(1 if c < 128 and pred(chr(c)) else 0 for c in range(256))


# Per-class tables for counting ASCII samples at C speed (bytes.translate + count).
_T_SPACE, _T_PRINT, _T_ALNUM, _T_ALPHA = (_ascii_table(f) for f in (str.isspace, str.isprintable,
                                                                    str.isalnum, str.isalpha))


def _count(sample: str, table: bytes, pred: Callable[[str], bool]) -> int:
    """How many characters of ``sample`` satisfy ``pred`` (``table`` is ``pred`` over ASCII)."""
    if sample.isascii():
        return sample.encode("ascii").translate(table).count(1)
    return sum(map(pred, sample))


def _texty(s: str) -> bool:
    """Mostly printable, mostly letters and digits: worth a decoded view."""
    sample = s[:_SAMPLE]
    if not sample.isascii():
        sample = sample.translate(_INVISIBLE_DEL)
    stripped = sample.strip()
    if len(stripped) < 4:
        return False
    spaces = _count(sample, _T_SPACE, str.isspace)
    printable = _count(sample, _T_PRINT, str.isprintable) + spaces - sample.count(" ")
    if printable < 0.95 * len(sample) or "\ufffd" in sample:
        return False
    alnum = _count(sample, _T_ALNUM, str.isalnum)
    return alnum >= 0.5 * (len(sample) - spaces)


def _natural(s: str) -> bool:
    """Reads like natural language (words of letters), not an identifier or binary junk."""
    sample = s[:_SAMPLE]
    if not _texty(sample):
        return False
    spaces = _count(sample, _T_SPACE, str.isspace)
    letters = _count(sample, _T_ALPHA, str.isalpha)
    nonspace = len(sample) - spaces
    if letters < 0.7 * nonspace or len(set(sample.lower())) < 5:
        return False
    return spaces >= 1 or letters >= 8


# -- rot13 / Caesar / reversed ---------------------------------------------------------------------

_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))
_SEGMENT_DELIMS = "\n'\"`:;.!?()[]{}<>|«»“”‘’「」"
_DELIM_TABLE = dict.fromkeys(map(ord, _SEGMENT_DELIMS), "\x00")


def _words(text: str) -> list[str]:
    return text.encode("ascii", "replace").lower().translate(_LETTERS_ONLY).decode("ascii").split()


def shifted_segments(text: str) -> list[tuple[str, int, int, str]]:
    """Segments of folded ``text`` that read as English after a Caesar shift or a reversal.

    Returns ``(kind, start, end, decoded)`` with kind ``rot13``, ``caesar<k>``, ``reversed`` or
    ``reversed_words``; empty for ordinary text (a set intersection decides that quickly).
    """
    words = _words(text)
    if len(words) < 3:
        return []
    out: list[tuple[str, int, int, str]] = []
    sw = shifted_words()
    found = sw.keys() & words
    if len(found) >= 3:
        shifts = Counter(sw[w] for w in found)
        k, hits = shifts.most_common(1)[0]
        if hits >= 3:
            kind = "rot13" if k == 13 else f"caesar{26 - k}"
            for s, e in _good_segments(text, lambda seg, k=k: caesar(seg, k)):
                out.append((kind, s, e, caesar(text[s:e], k)))
    distinct = set(words)
    if len(atbash_words() & distinct) >= 3:
        for s, e in _good_segments(text, atbash):
            out.append(("atbash", s, e, atbash(text[s:e])))
    rev = reversed_words() & distinct
    if len(rev) >= 3:
        for s, e in _good_segments(text, lambda seg: seg[::-1]):
            seg = text[s:e]
            out.append(("reversed", s, e, seg[::-1]))
            out.append(("reversed_words", s, e, " ".join(w[::-1] for w in seg.split(" "))))
    short = scrambled_words().keys()
    if len(short & distinct) >= 3:
        # worth descrambling: a tenth of the segment's distinct words are known shuffles (random text
        # holds a few by chance; a scrambled sentence is mostly made of them)
        for s, e in _good_segments(text, unscramble, budget=_UNSCRAMBLE_BUDGET,
                                   worth=lambda ws: len(short & set(ws)) >= max(2, len(ws) // 10)):
            out.append(("typoglycemia", s, e, unscramble(text[s:e])))
    return out


# One character class, no alternation or nesting: Python's engine splits on it in linear time, at C
# speed (google-re2's split iterates in Python, ten times slower here).
_LETTER_RUNS = re.compile(r"([A-Za-z]+)")


def unscramble(text: str) -> str:
    """``text`` with each word of 4+ letters that is a shuffle of one common word's inner letters put back."""
    common, short, table = common_words(), scrambled_words(), unscramble_table()
    parts = _LETTER_RUNS.split(text)
    for i in range(1, len(parts), 2):          # the letter runs (split keeps them at odd positions)
        w = parts[i]
        low = w.lower()
        if len(low) < 4 or low in common:
            continue
        got = short.get(low) if len(low) <= 7 else table.get(scramble_key(low))
        if got is not None:
            parts[i] = got.capitalize() if w[0].isupper() else got
    return "".join(parts)


_UNSCRAMBLE_BUDGET = Limits().max_decoded_chars   # descrambling is Python per word: stop once this much is found


def _good_segments(text: str, decode: object, budget: int | None = None,
                   worth: Callable[[list[str]], bool] | None = None) -> list[tuple[int, int]]:
    """Spans (merged runs of segments) whose decoding holds clearly more common words.

    With ``budget``, segments stop being tried once the spans found hold that many characters;
    ``worth`` (a segment's words -> bool) skips segments without decoding them.
    """
    common = common_words()
    segs: list[tuple[int, int]] = []
    pos = 0
    for piece in text.translate(_DELIM_TABLE).split("\x00"):
        stripped = piece.lstrip()
        if stripped.strip():
            start = pos + len(piece) - len(stripped)
            segs.append((start, start + len(stripped.rstrip())))
        pos += len(piece) + 1
    good: list[tuple[int, int]] = []
    found = 0
    for s, e in segs:
        if budget is not None and found >= budget:
            break
        seg = text[s:e]
        before = _words(seg)
        if len(before) < 3 or (worth is not None and not worth(before)):
            continue
        after = _words(decode(seg))  # type: ignore[operator]
        hits_after = sum(1 for w in after if w in common)
        hits_before = sum(1 for w in before if w in common)
        ratio_after = hits_after / len(after) if after else 0.0
        ratio_before = hits_before / len(before)
        if hits_after >= 3 and ratio_after >= 0.35 and ratio_after >= ratio_before + 0.2:
            found += e - s
            if good and not text[good[-1][1]:s].strip(" " + _SEGMENT_DELIMS):
                good[-1] = (good[-1][0], e)
            else:
                good.append((s, e))
    return [(s, e) for s, e in good]
