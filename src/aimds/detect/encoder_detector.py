"""Tier 1 cascade stage: the fine-tuned MiniLM window classifier (int8 ONNX)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.classifier import model_finding, threshold_score
from aimds.detect.encoder import EncoderModel, Window
from aimds.detect.junk import compact, default_model, junk_runs, substitute
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
    and ``max_windows`` (see :meth:`regions`), ``deadline_batch`` (windows per model call once the
    scan's deadline is near, default 2; see :meth:`scan`), ``junk`` (default true: read the text
    without runs of non-linguistic tokens, see :meth:`junk_runs`), ``junk_min`` (junk tokens that
    make a run, default 4) and ``read_decoded`` (default true: an encoded run the normaliser decoded
    to natural language is read as its decoding: ``Views.decoded_in_place``). A text that is one
    ASCII word (no spaces, at most 24 characters) is not scored.
    """

    name: ClassVar[str] = "encoder"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.PROMPT_INJECTION, Category.INDIRECT_INJECTION)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025", "atlas:AML.T0051")
    cost: ClassVar[int] = 8000
    cascade: ClassVar[bool] = True
    #: Seconds per (padded) token before the first measurement: slower than a slow 2-core VM (~0.12 ms).
    INITIAL_TOKEN_S: ClassVar[float] = 2e-4

    def load(self) -> None:
        """Load the ONNX model and tokenizer (raises ModelError if missing or corrupt)."""
        if self.loaded:
            return
        self.model = EncoderModel.load(self.options.get("model_path"), threads=int(self.options.get("threads", 2)))
        self.apply_operating_points(operating_points())
        self.always = bool(self.options.get("always", False))
        self.junk_model = default_model() if self.options.get("junk", True) else None
        #: The time source ``ScanContext.deadline`` is read with (tests substitute a fake clock).
        self.clock: Callable[[], float] = time.perf_counter
        self._token_s = self.INITIAL_TOKEN_S  # running estimate of the model's cost per padded token
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

    def priority(self, spans: Sequence[tuple[int, int]], context: ScanContext) -> list[int]:
        """Indices of the window ``spans`` (folded offsets) in the order to score them.

        The first window, then those overlapping the n-gram classifier's riskiest windows
        (``context.scores["classifier_windows"]``, highest probability first), then the rest in text
        order: when the deadline cuts the stage short, the windows most likely to matter were read.
        """
        order = [0] if spans else []
        for s, e, _ in sorted(context.scores.get("classifier_windows") or [], key=lambda w: -w[2]):
            order += [i for i, (ws, we) in enumerate(spans) if ws < e and s < we and i not in order]
        return order + [i for i in range(len(spans)) if i not in order]

    def junk_runs(self, text: str, offset: int, views: Views,
                  index: np.ndarray | None = None) -> list[tuple[int, int]]:
        """Runs of non-linguistic tokens in ``text`` (a region of the folded view starting at ``offset``;
        ``index`` maps its characters to the region's when decoded runs were put in place) that the
        transformer should not read: random letter strings, hashes, hex and base64 blobs
        (``aimds.detect.junk``). On such runs it returns confident nonsense (random words p ≈ 0.9).
        A run the normaliser decoded (an ``encoded:*`` signal: rot13, Caesar, base64...) is kept."""
        if self.junk_model is None:
            return []
        runs = junk_runs(text, model=self.junk_model, min_junk=int(self.options.get("junk_min", 4)))
        if not runs:
            return []
        encoded = [(g.start, g.end) for g in views.signals if g.kind.startswith("encoded:")]
        if not encoded:
            return runs
        folded = views.folded
        keep = []
        for s, e in runs:
            if index is not None:
                s_, e_ = int(index[s]), int(index[e - 1]) + 1
            else:
                s_, e_ = s, e
            os_, oe = folded.to_original(offset + s_, offset + e_)
            if not any(gs < oe and os_ < ge for gs, ge in encoded):
                keep.append((s, e))
        return keep

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """At most one finding: the riskiest window, when its score reaches 0.2.

        The windows are scored in :meth:`priority` order until ``context.deadline`` passes (the first
        ``min_windows``, default 2, always); windows skipped there are reported in ``context.notes`` and
        the scored ones still decide. While all
        the remaining windows are expected to fit before the deadline they go in one model call, as
        without a deadline; otherwise ``deadline_batch`` at a time, the deadline checked before each.
        """
        par = self.params(context)
        folded = views.folded
        word = folded.text.strip()
        if word.isascii() and len(word) <= 24 and not any(c.isspace() for c in word):
            # one Latin-script word holds no instruction to judge; the model's score there is a word prior
            # (measured: "repeat" alone p = 0.995, a block; "stop" 0.907). Rules and n-grams still read it.
            return []
        budget = int(self.options.get("max_windows", 6))
        chosen: list[tuple[int, Window]] = []
        spans: list[tuple[int, int]] = []
        regions = self.regions(folded.text, context)
        removed = [0, 0]  # junk runs and characters the transformer did not read
        pieces = views.decoded_in_place() if self.options.get("read_decoded", True) else []
        for rs, re_ in regions:
            sub = folded.text[rs:re_]
            index = None
            local = [(s - rs, e - rs, t) for s, e, t in pieces if rs <= s and e <= re_]
            if local:
                sub, index = substitute(sub, local)
            runs = self.junk_runs(sub, rs, views, index)
            if runs:
                removed[0] += len(runs)
                removed[1] += sum(e - s for s, e in runs)
                sub, kept = compact(sub, runs)
                index = kept if index is None else index[kept]
                if not sub.strip():
                    continue
            for w in self.model.windows(sub):
                if len(chosen) < budget or len(folded.text) <= int(self.options.get("max_chars", 4000)):
                    chosen.append((rs, w))
                    if index is None:
                        spans.append((rs + w.start, rs + w.end))
                    else:
                        end = int(index[w.end - 1]) + 1 if w.end > w.start else int(index[w.start])
                        spans.append((rs + int(index[w.start]), rs + end))
        if removed[0]:
            context.notes.append(f"encoder: read without {removed[0]} run(s) of non-linguistic tokens "
                                 f"({removed[1]} characters)")
        if not chosen:
            return []
        if pieces:
            context.notes.append(f"encoder: read {len(pieces)} decoded run(s) as their decoding")
        # every window of the text, in order (then the memory stage can reuse the pooled vectors)
        whole = regions == [(0, len(folded.text))] and not removed[0] and not pieces
        probs, vectors = self._score([w for _, w in chosen], self.priority(spans, context), context.deadline,
                                     pooled=whole)
        done = sum(p is not None for p in probs)
        if done < len(chosen):
            context.notes.append(f"deadline: encoder scored {done} of {len(chosen)} windows")
        if vectors is not None:  # the memory stage reuses this run instead of embedding the text again
            hidden = self.model.meta.get("hidden_output") or {}
            context.scores["window_embeddings"] = (folded.text, str(hidden.get("embedder", "")),
                                                   tuple((w.start, w.end) for _, w in chosen), vectors)
        scores = [(s, e, p) for (s, e), p in zip(spans, probs, strict=True) if p is not None]
        if not scores:
            return []
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

    def _score(self, wins: Sequence[Window], order: Sequence[int], deadline: float | None,
               pooled: bool) -> tuple[list[float | None], np.ndarray | None]:
        """Probabilities of ``wins`` (None for those skipped at ``deadline``), scored in ``order``, and
        when ``pooled`` their pooled hidden vectors, only if every window was scored (else None)."""
        probs: list[float | None] = [None] * len(wins)
        rows: dict[int, np.ndarray] = {}
        has_vectors = pooled
        batch = max(1, int(self.options.get("deadline_batch", 2)))
        # The first ``min_windows`` in priority order (the text's start and the n-gram model's riskiest
        # window) are scored even past the deadline: padding a text until the cheaper stages spend the
        # budget must not switch the transformer off (measured: a spaced-out 'ignore' went block -> allow).
        # Windows with the same tokens are scored once (repeated content, or padding meant to be slow).
        keys = [tuple(w.ids) for w in wins]
        first: dict[tuple[int, ...], int] = {}
        for i in order:
            first.setdefault(keys[i], i)
        pending = [i for i in order if first[keys[i]] == i]
        owed = min(len(pending), max(0, int(self.options.get("min_windows", 2))))
        while pending:
            now = self.clock()
            if owed <= 0 and deadline is not None and now >= deadline:
                break
            cost = self._token_s * len(pending) * max(len(wins[i].ids) for i in pending)  # padded tokens
            take = len(pending) if deadline is None or now + cost <= deadline else max(batch, owed)
            idx, pending = sorted(pending[:take]), pending[take:]  # text order within a call
            owed -= len(idx)
            run = [wins[i] for i in idx]
            if pooled:
                got, vecs = self.model.score_windows_pooled(run)
            else:
                got, vecs = self.model.score_windows(run), None
            tokens = len(run) * max(len(w.ids) for w in run)
            self._token_s = 0.7 * self._token_s + 0.3 * (self.clock() - now) / tokens
            for k, i in enumerate(idx):
                probs[i] = got[k]
                if vecs is not None:
                    rows[i] = vecs[k]
            has_vectors = has_vectors and vecs is not None
        for i, key in enumerate(keys):  # copies share their original's score and vector
            j = first[key]
            if j != i and probs[j] is not None:
                probs[i] = probs[j]
                if j in rows:
                    rows[i] = rows[j]
        if not has_vectors or len(rows) < len(wins):
            return probs, None
        return probs, np.stack([rows[i] for i in range(len(wins))])


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
