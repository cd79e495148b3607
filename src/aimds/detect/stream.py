"""Streaming output scanning: sliding windows over a response as it is generated, without buffering it.

:class:`StreamScanner` keeps at most ``window + overlap + one chunk`` characters. Two kinds of checks:

- **per chunk** (cheap, RE2 over the new chunk plus the ``overlap`` characters before it): canary
  tokens (plain, upper-cased, rot13, reversed, spaced), exfiltration beacons (markdown/HTML URLs
  carrying data), secrets, and a verbatim run of the system prompt;
- **per completed window** (``window`` characters, plus the ``overlap`` before it): the full
  normalisation (decoded base64/hex/URL escapes…) and the output detectors on it — the system-prompt
  similarity (paraphrase, translation, encodings), canaries in decoded views, beacons — or, when
  built on a :class:`~aimds.pipeline.Guard`, the guard's whole pipeline on the window.

A leak is therefore reported by the chunk that completes it (cheap checks) or at the latest when the
window it ends in completes: within one window of its appearance. ``overlap`` must be at least the
longest thing to see whole (a canary token: :data:`aimds.respond.canary.MAX_MATCH_LEN`; a beacon URL).
:meth:`StreamScanner.close` scans the unfinished last window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from aimds.detect.base import Detector, ScanContext
from aimds.detect.entities import find_entities
from aimds.detect.leak_similarity import longest_run, profile
from aimds.detect.output import CanaryDetector, ExfilOutputDetector, PromptLeakOutputDetector
from aimds.normalize import normalize
from aimds.respond import canary as canaries
from aimds.types import Category, Direction, Finding, ScanRequest, Span

if TYPE_CHECKING:
    from aimds.pipeline import Guard

DEFAULT_WINDOW = 2048
DEFAULT_OVERLAP = 512
#: Findings at or above this score abort the stream (the default policy's block threshold).
DEFAULT_ABORT_AT = 0.75


@dataclass(frozen=True, slots=True)
class StreamResult:
    """What one :meth:`StreamScanner.feed` (or ``close``) found.

    ``abort``: stop the stream now (a finding at or above ``abort_at`` has been seen, in this call or
    before); ``findings``: the new findings of this call, spans in stream offsets; ``offset``:
    characters consumed so far; ``window_scanned``: a full window scan ran in this call.
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
        scanned = False
        while self._offset - self._win_start >= self.window:
            end = self._win_start + self.window
            new += self._scan_window(end)
            self._win_start = end
            scanned = True
        self._trim()
        return self._result(new, scanned)

    def close(self) -> StreamResult:
        """Scan the unfinished last window; the scanner takes no more chunks after this."""
        if self._closed:
            return StreamResult(self._aborted, (), self._offset)
        self._closed = True
        new: list[Finding] = []
        scanned = False
        if self._offset > self._win_start or self._offset == 0:
            new = self._scan_window(self._offset)
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
        keep_from = max(self._base, self._win_start - self.overlap)
        if keep_from > self._base:
            self._buf = self._buf[keep_from - self._base:]
            self._base = keep_from

    def _cheap(self, region: str, base: int) -> list[Finding]:
        """Canary, beacons, secrets and a verbatim prompt run in ``region`` (stream offset ``base``)."""
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
        if self._profile is not None:
            run, (s, e) = longest_run(self._profile, low)
            if run >= self.leak.weights.run_words:
                out.append(Finding(self.leak.name, "prompt_leak.verbatim_run", Category.PROMPT_LEAK, 0.9, 9,
                                   Span(base + s, base + e), "",
                                   f"{run} consecutive words of the system prompt in the stream", "stream"))
        return out

    def _scan_window(self, end: int) -> list[Finding]:
        """The full scan of ``[window start - overlap, end)``."""
        start = max(self._base, self._win_start - self.overlap)
        text = self._buf[start - self._base:end - self._base]
        if not text:
            return []
        request = replace(self.request, text=text)
        views = normalize(text)
        ctx = ScanContext(request)
        found: list[Finding] = []
        if self.guard is not None:
            found += self.guard.scan(request).findings
        else:
            for d in self.detectors:
                found += d.scan(views, ctx)
        for d in (self.canary, self.leak, self.exfil):   # the output checks, when not among the detectors
            if d not in self.detectors:
                found += d.scan(views, ctx)
        return [_shift(f, start) for f in found]


def _shift(f: Finding, base: int) -> Finding:
    if f.span is None or base == 0:
        return f
    return replace(f, span=Span(f.span.start + base, f.span.end + base))

