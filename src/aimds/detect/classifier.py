"""Tier 1 learned classifier: hashed n-gram logistic regression over windows of the folded view."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.evidence import excerpt
from aimds.detect.junk import substitute
from aimds.detect.linear_model import LinearModel
from aimds.detect.operating_points import operating_points
from aimds.normalize import normalize
from aimds.normalize.views import View, Views
from aimds.types import Category, Finding, Role, Span

# Views the model also reads besides "folded" (each only exists when normalisation built it).
EXTRA_VIEWS = ("deleet", "despaced", "decoded")
#: The score a probability equal to the operating threshold maps to (the policy's flag line).
OPERATING_SCORE = 0.5
#: The most a probability below the threshold can score: two such models agreeing just below
#: their thresholds reach the flag line together, one alone never does.
SUB_THRESHOLD_MAX = 0.3


def threshold_score(p: float, threshold: float) -> float:
    """Map a probability to a finding score so that ``p == threshold`` gives ``OPERATING_SCORE``.

    Above the threshold the score rises linearly to 1; below it, it is compressed to at most
    ``SUB_THRESHOLD_MAX`` (quadratically), so weak evidence adds up only when it is near the line.
    """
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    if p >= t:
        return OPERATING_SCORE + (1 - OPERATING_SCORE) * (p - t) / (1 - t)
    return SUB_THRESHOLD_MAX * (p / t) ** 2


@dataclass(frozen=True, slots=True)
class ModelState:
    """What one scan reads together: the model, its operating threshold and the operating points file."""

    model: LinearModel
    threshold: float
    ops: Mapping[str, Any]


@register
class ClassifierDetector(Detector):
    """Scores every window of the text with the shipped linear model; reports the riskiest window.

    Options: ``model_path`` (an artifact written by ``aimds train``), ``threshold`` (override the
    operating point chosen on dev data by ``aimds tune``), ``standalone`` (use the threshold tuned
    for pipelines without the encoder; the Guard sets it), ``report_floor`` (smallest score
    reported, default 0.2), ``read_decoded`` (default false: read the folded view with each encoded
    run that decoded to natural language replaced by its decoding, ``Views.decoded_in_place``, as the
    encoder does by default. Measured on 2026-11-26: harmless hidden sentences blocked by the fast
    profile 40 -> 16 of 144 in ``benchmarks/obfuscation_probe.py``, but 3 dev attacks lost there and 1
    in the default pipeline — dev labels "can you decode this: <harmless rot13/Morse>" an attack, and
    the n-gram model then only sees the harmless decoding).

    The model can be replaced while scans run (:meth:`swap_model`, used by the service's hot
    reload of learned versions): each scan reads one :class:`ModelState` snapshot, so it sees
    either the old model with its threshold or the new one with its own, never a mix.
    """

    name: ClassVar[str] = "classifier"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (
        Category.PROMPT_INJECTION, Category.INDIRECT_INJECTION, Category.JAILBREAK,
        Category.PROMPT_LEAK, Category.OBFUSCATION,
    )
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025", "atlas:AML.T0051")
    cost: ClassVar[int] = 150

    def load(self) -> None:
        """Load the model artifact (raises ModelError if missing or corrupt)."""
        if self.loaded:
            return
        path = self.options.get("model_path")
        self._swap_lock = threading.Lock()
        self._state = self._make_state(LinearModel.load(Path(path) if path else None), operating_points())
        self.floor = float(self.options.get("report_floor", 0.2))
        super().load()

    def _make_state(self, model: LinearModel, ops: Mapping[str, Any]) -> ModelState:
        default = ops.get("classifier_threshold_alone", ops["classifier_threshold"]) if self.options.get(
            "standalone") else ops["classifier_threshold"]
        return ModelState(model, float(self.options.get("threshold", default)), ops)

    def swap_model(self, model: LinearModel, ops: Mapping[str, Any]) -> ModelState:
        """Replace the model and its operating points atomically (scans in flight finish on the old
        ones); returns the previous state. A ``threshold`` option still overrides the file's."""
        new = self._make_state(model, ops)
        with self._swap_lock:
            old, self._state = self._state, new
        return old

    @property
    def state(self) -> ModelState:
        """The current model, threshold and operating points (one consistent snapshot)."""
        return self._state

    @property
    def model(self) -> LinearModel:
        """The current model."""
        return self._state.model

    @property
    def threshold(self) -> float:
        """The current operating threshold."""
        return self._state.threshold

    def version(self) -> str:
        """The model's version."""
        return self._state.model.version

    def probability(self, views: Views, folded_windows: list[tuple[int, int, float]] | None = None,
                    model: LinearModel | None = None) -> tuple[float, str, int, int]:
        """Highest window probability: ``(p, view name, start, end)`` in that view's coordinates.

        ``folded_windows``, when given, receives the scores of the folded view's windows; ``model``
        defaults to the current one.
        """
        model = model or self._state.model
        best = (0.0, "folded", 0, 0)
        pieces = views.decoded_in_place() if self.options.get("read_decoded", False) else []
        for view in views.views:
            if view.name != "folded" and view.name not in EXTRA_VIEWS:
                continue
            if view.name == "folded" and pieces:
                text, index = substitute(view.text, pieces)
                scored = [(int(index[s]), int(index[e - 1]) + 1 if e > s else int(index[s]), p)
                          for s, e, p in model.score_windows(text)]
            else:
                scored = model.score_windows(view.text)
            if view.name == "folded" and folded_windows is not None:
                folded_windows.extend(scored)
            for s, e, p in scored:
                if p > best[0]:
                    best = (p, view.name if not view.source else f"decoded:{view.source}", s, e)
        return best

    def locate(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """The sentences of ``text[start:end]`` that look like injected instructions.

        Model findings cover whole windows; sanitising a document needs the offending sentences.
        Falls back to the whole range when no single sentence stands out.
        """
        st = self._state
        spans = sentence_spans(text, start, end)
        scored = [(s, e, st.model.proba(st.model.logit(normalize(text[s:e]).folded.text))) for s, e in spans]
        hits = [(s, e) for s, e, p in scored if p >= st.threshold * 0.5]
        return hits or [(start, end)]

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """At most one finding: the riskiest window, if its score reaches the report floor."""
        st = self._state  # one snapshot for the whole scan (a concurrent swap_model cannot mix versions)
        folded_windows: list[tuple[int, int, float]] = []
        p, vname, s, e = self.probability(views, folded_windows, st.model)
        context.scores[self.name] = p
        context.scores[f"{self.name}_windows"] = folded_windows
        context.scores["operating_points"] = st.ops  # later cascade stages use the same version's points
        score = threshold_score(p, st.threshold)
        if score < self.floor:
            return []
        view = next(v for v in views.views if v.name == vname.split(":", 1)[0]
                    and (not v.source or vname.endswith(v.source)))
        text = view.text[s:e]
        # Obfuscation is a property of how the text was hidden: only a non-direct view can show it.
        cat = Category(st.model.category(text, exclude=("obfuscation",) if vname == "folded" else ()))
        if context.request.role in (Role.DOCUMENT, Role.TOOL) and cat is Category.PROMPT_INJECTION:
            cat = Category.INDIRECT_INJECTION
        return [model_finding(self.name, f"linear:{st.model.version}", cat, score, view, s, e,
                              f"n-gram model p={p:.3f} (operating threshold {st.threshold:.3f}) on {vname} window",
                              vname)]


def model_finding(detector: str, rule_id: str, category: Category, score: float, view: View, start: int, end: int,
                  explanation: str, view_name: str) -> Finding:
    """A finding for a model window ``[start, end)`` of ``view`` (span mapped to the original text)."""
    o_start, o_end = view.to_original(start, end)
    return Finding(
        detector=detector,
        rule_id=rule_id,
        category=category,
        score=score,
        severity=7 if score >= OPERATING_SCORE else 4,
        span=Span(o_start, o_end),
        evidence=excerpt(view.text, start, end),
        explanation=explanation,
        view=view_name,
        tags=("owasp:LLM01:2025",),
    )


_BREAKS = frozenset(".!?\n。！？")


def sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` at sentence punctuation and newlines (a linear scan)."""
    out = []
    s = start
    for i in range(start, end):
        if text[i] in _BREAKS:
            if text[s:i + 1].strip():
                out.append((s, i + 1))
            s = i + 1
    if text[s:end].strip():
        out.append((s, end))
    return out
