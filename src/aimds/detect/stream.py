"""Streaming output scanning: sliding windows over a response as it is generated, without buffering it.

:class:`StreamScanner` keeps at most ``window + overlap + one chunk`` characters, and spreads the work
so that no chunk pays for a whole window at once (100-character chunks: well under 1 ms each):

- **per chunk**, on the new text only (each character is handled once):
  - RE2 over the chunk plus the ``overlap`` characters before it: canary tokens (plain, upper-cased,
    rot13, reversed, spaced), exfiltration beacons (markdown/HTML URLs carrying data), secrets;
  - the system-prompt similarity, incrementally (:class:`~aimds.detect.leak_similarity.RunningSimilarity`):
    the new words are folded and tokenised once, their evidence (shingle hits, distinctive tokens,
    numbers, list items) kept per segment, and the last ``window + overlap`` characters judged as a
    whole — verbatim, partial, paraphrased and translated leaks are reported by the chunk that
    completes the evidence (a word cut by the chunk end waits for the next chunk, at most
    :data:`~aimds.detect.leak_similarity.HOLD_CHARS` characters);
- **per completed window** (``window`` characters, plus the ``overlap`` before it): what needs the
  window whole — the decoders (base64/hex/URL escapes…, rot13/Caesar/reversed stretches), and on what
  they decode the system-prompt similarity and the canaries; beacons and secrets on the window. The
  plain text's similarity is not recomputed (the per-chunk evidence covers it). With detectors
  other than the output ones (canary, prompt_leak_output, exfil_output, PII/secrets), or when built
  on a :class:`~aimds.pipeline.Guard`, the window gets the full normalisation and every detector
  (the guard's whole pipeline).

A leak is therefore reported by the chunk that completes it or at the latest when the window it ends
in completes: within one window of its appearance (a window ends early, at a chunk boundary, when the
next chunk of the same size would overrun it). ``overlap`` must be at least the longest thing to
see whole (a canary token: :data:`aimds.respond.canary.MAX_MATCH_LEN`; a beacon URL).
:meth:`StreamScanner.close` scans the unfinished last window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import re2

from aimds.detect.base import Detector, ScanContext
from aimds.detect.entities import find_entities
from aimds.detect.evidence import excerpt
from aimds.detect.leak_similarity import RunningSimilarity, fold_light, profile
from aimds.detect.output import CanaryDetector, ExfilOutputDetector, PromptLeakOutputDetector
from aimds.detect.pii import EntityDetector
from aimds.normalize import normalize
from aimds.normalize.decoders import decode_views
from aimds.normalize.views import Limits, View, Views
from aimds.respond import canary as canaries
from aimds.types import Category, Direction, Finding, ScanRequest, Span

if TYPE_CHECKING:
    from aimds.pipeline import Guard

DEFAULT_WINDOW = 2048
DEFAULT_OVERLAP = 512
#: Findings at or above this score abort the stream (the default policy's block threshold).
DEFAULT_ABORT_AT = 0.75
#: Detectors whose window scan needs only the original text, the folded view and the decoded views.
_WINDOW_LIGHT = (CanaryDetector, PromptLeakOutputDetector, ExfilOutputDetector, EntityDetector)
_ASCII_LETTER = re2.compile(r"[A-Za-z]")


@dataclass(frozen=True, slots=True)
class StreamResult:
    """What one :meth:`StreamScanner.feed` (or ``close``) found.

    ``abort``: stop the stream now (a finding at or above ``abort_at`` has been seen, in this call or
    before); ``findings``: the new findings of this call, spans in stream offsets; ``offset``:
    characters consumed so far; ``window_scanned``: a window scan ran in this call.
    """

    abort: bool
    findings: tuple[Finding, ...]
    offset: int
    window_scanned: bool = False


class StreamScanner:
    """Scans a streamed response in sliding windows.

    ``guard_or_detectors``: a :class:`~aimds.pipeline.Guard` (its whole pipeline runs on each window,
    as ``direction=output`` with ``metadata={"system_prompt": …}``), or detectors to run on each
    window, or None for the output detectors (``canary``, ``prompt_leak_output``, ``exfil_output``).
    The per-chunk checks use the ``canary`` and ``exfil_output`` detectors given (their key and
    allowed hosts) or default ones. Not thread-safe: one scanner per stream.
    """

    def __init__(self, guard_or_detectors: Guard | Sequence[Detector] | None = None, *,
                 window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP, system_prompt: str | None = None,
                 request: ScanRequest | None = None, abort_at: float = DEFAULT_ABORT_AT,
                 cheap_checks: bool = True) -> None:
        if window < 1 or overlap < 0:
            raise ValueError("window must be positive and overlap non-negative")
        if overlap < canaries.MAX_MATCH_LEN:
            raise ValueError(f"overlap must be at least {canaries.MAX_MATCH_LEN} (a mangled canary token)")
        self.window = window
        self.overlap = overlap
        self.abort_at = abort_at
        self.cheap_checks = cheap_checks
        self.guard: Guard | None = None
        detectors: list[Detector]
        if guard_or_detectors is None:
            detectors = [CanaryDetector(), PromptLeakOutputDetector(), ExfilOutputDetector()]
        elif isinstance(guard_or_detectors, Sequence):
            detectors = list(guard_or_detectors)
        else:
            self.guard = guard_or_detectors.load()
            detectors = list(self.guard.detectors)
        for d in detectors:
            d.load()
        self.detectors = detectors
        self.canary = next((d for d in detectors if isinstance(d, CanaryDetector)), None) or CanaryDetector()
        self.exfil = next((d for d in detectors if isinstance(d, ExfilOutputDetector)), None) or ExfilOutputDetector()
        self.leak = next((d for d in detectors if isinstance(d, PromptLeakOutputDetector)), None)
        if self.leak is None:
            self.leak = PromptLeakOutputDetector()
        for d in (self.canary, self.exfil, self.leak):
            d.load()
        meta: dict[str, Any] = dict(request.metadata) if request is not None else {}
        if system_prompt is not None:
            meta["system_prompt"] = system_prompt
        base = request if request is not None else ScanRequest(text="", direction=Direction.OUTPUT)
        self.request = replace(base, text="", direction=Direction.OUTPUT, metadata=meta)
        sp = meta.get("system_prompt")
        self.system_prompt = sp if isinstance(sp, str) and sp.strip() else None
        self._profile = profile(self.system_prompt) if self.system_prompt else None
        self._running = RunningSimilarity(self._profile, window + overlap) if self._profile is not None else None
        self._leak_reported: tuple[float, int] | None = None   # (score, span end) of the last similarity finding
        # Light windows: the output detectors only, so the window needs no full normalisation.
        self._light = self.guard is None and all(isinstance(d, _WINDOW_LIGHT) for d in detectors)
        self._limits = Limits()
        # The committed text, folded once: (stream start, end, fold_light text, its offsets or None).
        self._folds: deque[tuple[int, int, str, tuple[int, ...] | None]] = deque()
        self._committed = 0       # stream offset up to which text is folded (the rest: a word still arriving)
        self._buf = ""            # text from self._base on
        self._base = 0            # stream offset of self._buf[0]
        self._win_start = 0       # stream offset where the current window starts
        self._offset = 0
        self._seen: set[tuple[str, str, int]] = set()
        self._aborted = False
        self._closed = False

    @classmethod
    def for_output(cls, *, system_prompt: str | None = None, canary_key: bytes | None = None,
                   allowed_hosts: Sequence[str] = (), window: int = DEFAULT_WINDOW,
                   overlap: int = DEFAULT_OVERLAP, abort_at: float = DEFAULT_ABORT_AT) -> StreamScanner:
        """A scanner with the three output detectors (the usual way to build one)."""
        dets: list[Detector] = [CanaryDetector(key=canary_key) if canary_key else CanaryDetector(),
                                PromptLeakOutputDetector(), ExfilOutputDetector(allowed_hosts=list(allowed_hosts))]
        return cls(dets, window=window, overlap=overlap, system_prompt=system_prompt, abort_at=abort_at)

    @property
    def offset(self) -> int:
        """Characters consumed so far."""
        return self._offset

    @property
    def aborted(self) -> bool:
        """Whether an abort has been signalled."""
        return self._aborted

    def feed(self, chunk: str) -> StreamResult:
        """Consume one chunk: cheap checks on it (with the overlap before it), a window scan when one completes."""
        if self._closed:
            raise ValueError("feed() after close()")
        if not isinstance(chunk, str):
            raise TypeError(f"chunk must be str, not {type(chunk).__name__}")
        self._buf += chunk
        self._offset += len(chunk)
        new: list[Finding] = []
        if self.cheap_checks and chunk:
            start = max(self._base, self._offset - len(chunk) - self.overlap)
            new += self._cheap(self._buf[start - self._base:], start)
        new += self._advance(final=False)
        scanned = False
        while self._offset - self._win_start >= self.window:
            end = self._win_start + self.window
            new += self._scan_window(end)
            self._win_start = end
            scanned = True
        if chunk and self._win_start < self._offset and self._offset - self._win_start + len(chunk) > self.window:
            # The next chunk (if no longer than this one) would complete the window inside itself: the
            # window ends here instead, so what it holds is reported within one window of its end.
            new += self._scan_window(self._offset)
            self._win_start = self._offset
            scanned = True
        self._trim()
        return self._result(new, scanned)

    def close(self) -> StreamResult:
        """Scan the unfinished last window; the scanner takes no more chunks after this."""
        if self._closed:
            return StreamResult(self._aborted, (), self._offset)
        self._closed = True
        new: list[Finding] = self._advance(final=True)
        scanned = False
        if self._offset > self._win_start or self._offset == 0:
            new += self._scan_window(self._offset)
            scanned = True
        self._buf = ""
        return self._result(new, scanned)

    # -- internals ------------------------------------------------------------------------------

    def _result(self, new: list[Finding], scanned: bool) -> StreamResult:
        fresh = []
        for f in new:
            key = (f.detector, f.rule_id, f.span.start if f.span else -1)
            if key in self._seen:
                continue
            self._seen.add(key)
            fresh.append(f)
        if any(f.score >= self.abort_at for f in fresh):
            self._aborted = True
        return StreamResult(self._aborted, tuple(fresh), self._offset, scanned)

    def _trim(self) -> None:
        """Keep only what the next window scan and the next cheap check need."""
        keep_from = min(max(self._base, self._win_start - self.overlap), self._committed)
        if keep_from > self._base:
            self._buf = self._buf[keep_from - self._base:]
            self._base = keep_from
        while self._folds and self._folds[0][1] <= self._base:
            self._folds.popleft()

    def _cheap(self, region: str, base: int) -> list[Finding]:
        """Canaries, beacons and secrets in ``region`` (stream offset ``base``)."""
        out: list[Finding] = []
        low = region.lower()
        for cid, s, e, verified, form in canaries._scan_text(low, self.canary.key):
            out.append(Finding(self.canary.name, "canary.verified" if verified else "canary.unverified",
                               Category.PROMPT_LEAK, 1.0 if verified else CanaryDetector.UNVERIFIED_SCORE,
                               10 if verified else 6, Span(base + s, base + e), f"canary {cid}",
                               f"canary token {cid} ({form}) in the stream", "stream"))
        out += self.exfil.beacons(region, base)
        for ent in find_entities(region, categories=(Category.SECRET,)):
            out.append(Finding("secrets", ent.id, Category.SECRET, ent.score, 8,
                               Span(base + ent.start, base + ent.end), f"{ent.type} ({ent.end - ent.start} chars)",
                               f"{ent.type} in the stream", "stream"))
        return out

    def _advance(self, final: bool) -> list[Finding]:
        """Fold the new text (up to its last whole word) once, and add it to the running similarity; a finding
        when the last ``window + overlap`` characters now repeat the prompt (and did not already, as strongly)."""
        pending = self._buf[self._committed - self._base:]
        cut = RunningSimilarity.cut(pending, final)
        if not cut:
            return []
        start, text = self._committed, pending[:cut]
        self._committed += cut
        run = self._running
        if run is None and not self._light:
            return []                       # nothing reads the folded text between windows
        folded = fold_light(text, ascii_letters=None if text.isascii() else self._ascii_letters())
        self._folds.append((start, start + cut, *folded))
        if run is None or self.leak is None or not run.add(text, start, folded):
            return []
        sim, (s, e) = run.similarity()
        score = self.leak.weights.score(sim)
        if score < 0.8:
            return []
        last = self._leak_reported
        if last is not None and last[1] > run.start and (score < 1.0 or last[0] >= 1.0):
            return []                       # the same leak, already reported (again only once it is certain)
        self._leak_reported = (score, e)
        e = max(min(e, run.end), s)
        why = (f"the stream repeats the system prompt: longest verbatim run {sim.run} words, "
               f"{sim.containment:.0%} of its word shingles, {sim.distinctive_count:g} distinctive tokens "
               f"({sim.distinctive:.0%}), list structure {sim.structure:.2f}; in the last {run.end - run.start} "
               "characters")
        return [Finding(self.leak.name, "prompt_leak.similarity", Category.PROMPT_LEAK, score, 9, Span(s, e),
                        excerpt(self._buf, max(s - self._base, 0), max(e - self._base, 0)), why, "stream")]

    def _scan_window(self, end: int) -> list[Finding]:
        """The full scan of ``[window start - overlap, end)``."""
        start = max(self._base, self._win_start - self.overlap)
        text = self._buf[start - self._base:end - self._base]
        if not text:
            return []
        request = replace(self.request, text=text)
        ctx = ScanContext(request)
        found: list[Finding] = []
        if self._light:
            views = self._window_views(text, start)
            for d in [*self.detectors, *(d for d in (self.canary, self.leak, self.exfil) if d not in self.detectors)]:
                if isinstance(d, PromptLeakOutputDetector):
                    if self.system_prompt is not None:   # the plain text's similarity is kept per chunk
                        found += d.compare(views, self.system_prompt, plain=False)
                elif isinstance(d, CanaryDetector) and self.cheap_checks and views.views[1].offsets is None:
                    # ASCII window: its folded view is the lower-cased text the per-chunk check already read
                    found += d.scan(replace(views, views=views.views[2:]), ctx)
                else:
                    found += d.scan(views, ctx)
            return [_shift(f, start) for f in found]
        views = normalize(text)
        if self.guard is not None:
            found += self.guard.scan(request).findings
        else:
            for d in self.detectors:
                found += d.scan(views, ctx)
        for d in (self.canary, self.leak, self.exfil):   # the output checks, when not among the detectors
            if d not in self.detectors:
                found += d.scan(views, ctx)
        return [_shift(f, start) for f in found]

    def _window_views(self, text: str, start: int) -> Views:
        """Original, folded and decoded views of the window ``text`` (stream offset ``start``); the folded view
        is put together from the committed segments (nothing is folded twice). No leet or despaced views:
        the canary patterns allow separators between letters (what despacing joins), and no other light
        detector reads them."""
        folded = self._folded_window(start, start + len(text))
        dec = decode_views(text, folded, self._limits)
        return Views(original=text, views=(View("original", text), folded, *dec.views), signals=tuple(dec.signals),
                     truncated=bool(dec.notes), notes=tuple(dec.notes))

    def _ascii_letters(self) -> bool:
        """Whether the text kept (a window and a bit) has ASCII letters: fold's context for look-alike words."""
        return _ASCII_LETTER.search(self._buf) is not None

    def _folded_window(self, start: int, end: int) -> View:
        """The folded view of ``[start, end)`` from the folded segments, plus the uncommitted tail folded now."""
        parts: list[str] = []
        offsets: list[int] = []
        identity = True
        pieces = list(self._folds)
        if end > self._committed:
            tail = self._buf[self._committed - self._base:end - self._base]
            ascii_letters = None if tail.isascii() else self._ascii_letters()
            pieces.append((self._committed, end, *fold_light(tail, ascii_letters=ascii_letters)))
        for s, e, text, offs in pieces:
            if e <= start or s >= end:
                continue
            if offs is None:
                lo, hi = max(start - s, 0), min(end, e) - s
                parts.append(text[lo:hi])
                if not identity:
                    offsets.extend(range(s + lo - start, s + hi - start))
                continue
            if identity:
                identity = False
                offsets = list(range(sum(map(len, parts))))
            last = len(offs) - 1
            lo, hi = bisect_left(offs, start - s, 0, last), bisect_left(offs, end - s, 0, last)
            parts.append(text[lo:hi])
            offsets.extend(s + o - start for o in offs[lo:hi])
        folded = "".join(parts)
        if identity:
            return View("folded", folded, None)
        offsets.append(end - start)
        return View("folded", folded, tuple(offsets))
def _shift(f: Finding, base: int) -> Finding:
    if f.span is None or base == 0:
        return f
    return replace(f, span=Span(f.span.start + base, f.span.end + base))

