"""Tier 1 cascade stage: the fine-tuned MiniLM window classifier (int8 ONNX)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.classifier import model_finding, threshold_score
from aimds.detect.encoder import EncoderModel, Window
from aimds.detect.operating_points import operating_points
from aimds.normalize.views import Views
from aimds.types import Category, Finding, Role


@dataclass(frozen=True, slots=True)
class EncoderParams:
    """The encoder's operating points from one version of ``operating_points.yaml``."""

    ops: Mapping[str, Any]
    threshold: float
    gate: float
    decided: float
    fusion: dict[str, float]


@register
class EncoderDetector(Detector):
    """Scores windows of the folded text with the fine-tuned transformer; runs as a cascade stage.

    Its probability is fused with the linear classifier's (a logistic model over both log-odds,
    fitted on dev) before the threshold. It runs only when the cheaper stages left the outcome
    open (``data/models/operating_points.yaml``, chosen on dev): the linear probability is at
    least ``gate`` (below it the text is confidently benign) or a rule/signal spoke, and the risk
    so far is under ``decided`` (above it the verdict is already a block).

    Options: ``model_path``, ``threshold``, ``gate``, ``decided``, ``threads`` (onnxruntime
    intra-op threads, default 2), ``always`` (run on every text), ``max_chars``, ``max_regions``
    and ``max_windows`` (see :meth:`regions`).
    """

    name: ClassVar[str] = "encoder"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.PROMPT_INJECTION, Category.INDIRECT_INJECTION)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025", "atlas:AML.T0051")
    cost: ClassVar[int] = 8000
    cascade: ClassVar[bool] = True

    def load(self) -> None:
        """Load the ONNX model and tokenizer (raises ModelError if missing or corrupt)."""
        if self.loaded:
            return
        self.model = EncoderModel.load(self.options.get("model_path"), threads=int(self.options.get("threads", 2)))
        self.apply_operating_points(operating_points())
        self.always = bool(self.options.get("always", False))
        super().load()

    def _params_from(self, ops: Mapping[str, Any]) -> EncoderParams:
        o = self.options
        return EncoderParams(ops, float(o.get("threshold", ops["encoder_threshold"])),
                             float(o.get("gate", ops.get("cascade_gate", 0.0))),
                             float(o.get("decided", ops.get("cascade_decided", 1.0))),
                             {k: float(v) for k, v in (ops.get("fusion") or {}).items()})

    def apply_operating_points(self, ops: Mapping[str, Any]) -> None:
        """Use another version's threshold, cascade band and fusion (hot reload); options still win."""
        self._params = self._params_from(ops)

    def params(self, context: ScanContext | None = None) -> EncoderParams:
        """The operating points for this scan: the version the classifier used for it, else the current."""
        cur = self._params
        ops = context.scores.get("operating_points") if context is not None else None
        return cur if ops is None or ops is cur.ops else self._params_from(ops)

    @property
    def threshold(self) -> float:
        """The current operating threshold of the fused probability."""
        return self._params.threshold

    @property
    def gate(self) -> float:
        """The current cascade gate."""
        return self._params.gate

    @property
    def decided(self) -> float:
        """Prior risk above which the encoder is skipped."""
        return self._params.decided

    @property
    def fusion(self) -> dict[str, float]:
        """The current fusion weights."""
        return self._params.fusion

    def version(self) -> str:
        """The model's version."""
        return self.model.version

    def fuse(self, p_lin: float, p_enc: float, fusion: Mapping[str, float] | None = None) -> float:
        """Probability of attack from both models (logistic fusion fitted on dev by ``aimds tune``)."""
        f = self.fusion if fusion is None else fusion
        if not f:
            return p_enc
        a, b = _logit(p_lin), _logit(p_enc)
        z = f["bias"] + f["w_lin"] * a + f["w_enc"] * b + f["w_both"] * a * b / 10
        return 1.0 / (1.0 + math.exp(-z)) if z > -60 else 0.0

    def wants(self, context: ScanContext) -> bool:
        """Run only when the cheaper detectors left the outcome uncertain."""
        if self.always:
            return True
        par = self.params(context)
        if context.prior_risk >= par.decided:
            return False
        return context.prior_risk > 0 or context.scores.get("classifier", 1.0) >= par.gate

    def regions(self, text: str, context: ScanContext) -> list[tuple[int, int]]:
        """Character regions of the folded text to score.

        Short texts are scored whole. A text longer than ``max_chars`` (default 4,000) is read by
        the linear classifier in full; the encoder re-scores its ``max_regions`` riskiest windows
        (default 4) plus the first one, and at most ``max_windows`` model windows (default 6) in
        all, which bounds the cost on long or hostile input.
        """
        max_chars = int(self.options.get("max_chars", 4000))
        if len(text) <= max_chars:
            return [(0, len(text))]
        wins = context.scores.get("classifier_windows") or []
        k = int(self.options.get("max_regions", 4))
        ranked = sorted(wins, key=lambda w: -w[2])[:k]
        chosen = sorted({(s, e) for s, e, _ in ranked} | {(0, min(len(text), 512))})
        return chosen

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """At most one finding: the riskiest window, when its score reaches 0.2."""
        par = self.params(context)
        folded = views.folded
        budget = int(self.options.get("max_windows", 6))
        chosen: list[tuple[int, Window]] = []
        regions = self.regions(folded.text, context)
        for rs, re_ in regions:
            for w in self.model.windows(folded.text[rs:re_]):
                if len(chosen) < budget or len(folded.text) <= int(self.options.get("max_chars", 4000)):
                    chosen.append((rs, w))
        whole = regions == [(0, len(folded.text))]  # every window of the text, in order
        probs, vectors = self.model.score_windows_pooled([w for _, w in chosen]) if whole \
            else (self.model.score_windows([w for _, w in chosen]), None)
        if vectors is not None:  # the memory stage reuses this run instead of embedding the text again
            hidden = self.model.meta.get("hidden_output") or {}
            context.scores["window_embeddings"] = (folded.text, str(hidden.get("embedder", "")),
                                                   tuple((w.start, w.end) for _, w in chosen), vectors)
        scores = [(rs + w.start, rs + w.end, p) for (rs, w), p in zip(chosen, probs, strict=True)]
        s, e, p = max(scores, key=lambda x: x[2])
        p_lin = context.scores.get("classifier")
        fused = self.fuse(p_lin, p, par.fusion) if p_lin is not None else p
        score = threshold_score(fused, par.threshold)
        if score < 0.2:
            return []
        cat = Category.INDIRECT_INJECTION if context.request.role in (Role.DOCUMENT, Role.TOOL) \
            else Category.PROMPT_INJECTION
        extra = f", n-gram p={p_lin:.3f}, fused p={fused:.3f}" if p_lin is not None else ""
        return [model_finding(self.name, f"encoder:{self.model.version}", cat, score, folded, s, e,
                              f"transformer p={p:.3f}{extra} (operating threshold {par.threshold:.3f})", "folded")]


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
