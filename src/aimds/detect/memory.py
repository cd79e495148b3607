"""Tier 1 cascade stage ``memory``: nearest stored exemplars of attacks (and of confirmed false positives).

The text's folded view is embedded (``aimds.embed``: the pooled text and each of its first
``max_windows`` windows) and searched in the global and the request tenant's namespace. When the
encoder stage already ran on every window of the text in the same scan, its graph's second output
(the same block-1 hidden state, ``scripts/build_embedder.py --encoder-output``) is pooled instead:
one transformer run serves both stages.

- An **attack exemplar** at cosine ≥ ``threshold`` (feedback exemplars, default 0.90) or
  ≥ ``seed_threshold`` (the shipped seed, default 0.93) gives a finding whose score rises from 0.5
  (monitor) at the threshold to 0.95 at cosine 1; the finding lists the nearest exemplars (ids and
  similarities).
- A **benign (allow) exemplar** at cosine ≥ ``allow_threshold`` (default 0.97, near-duplicates only)
  that is closer than any attack exemplar gives a score-0 finding tagged ``aimds:allow``; the policy
  (``allow_exemplars.silences``) then discounts the statistical detectors that erred on it.

Options: ``data_dir`` (a store directory; without one the memory holds the shipped seed only),
``threshold``, ``seed_threshold``, ``allow_threshold``, ``k`` (neighbours reported, 5),
``max_windows`` (4), ``threads`` (onnxruntime intra-op threads, 1), ``poll_s`` (0.2), ``reuse_encoder``
(True: pool the encoder's hidden output when it ran on the same text).
The service binds its own store's memory with :meth:`MemoryDetector.bind`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.evidence import excerpt
from aimds.normalize.views import Views
from aimds.types import Category, Finding, Span

ALLOW_TAG = "aimds:allow"


def _category(name: str) -> Category:
    try:
        return Category(name)
    except ValueError:
        return Category.PROMPT_INJECTION


@register
class MemoryDetector(Detector):
    """Near-duplicates of known attacks raise risk; near-duplicates of confirmed false positives lower it."""

    name: ClassVar[str] = "memory"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.PROMPT_INJECTION, Category.INDIRECT_INJECTION,
                                                  Category.JAILBREAK, Category.PROMPT_LEAK, Category.OBFUSCATION)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025", "atlas:AML.T0051")
    cost: ClassVar[int] = 9000
    cascade: ClassVar[bool] = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.memory: Any = None
        self._own_store: Any = None
        self.reused = 0  # scans that reused the encoder's run instead of embedding (see _shared)

    def bind(self, memory: Any) -> None:
        """Use ``memory`` (an :class:`aimds.store.memory_live.AttackMemory`) instead of opening one."""
        self.memory = memory

    def load(self) -> None:
        """Load the embedder and the memory (seeding a fresh data directory)."""
        if self.loaded:
            return
        from aimds.embed import Embedder
        from aimds.store.memory_live import AttackMemory

        self.threshold = float(self.options.get("threshold", 0.90))
        self.seed_threshold = float(self.options.get("seed_threshold", 0.93))
        self.allow_threshold = float(self.options.get("allow_threshold", 0.97))
        self.k = int(self.options.get("k", 5))
        self.max_windows = int(self.options.get("max_windows", 4))
        if self.memory is None:
            embedder = Embedder.load(threads=int(self.options.get("threads", 1)))
            store = None
            if self.options.get("data_dir"):
                from aimds.store.sqlite import SQLiteStore

                store = self._own_store = SQLiteStore(self.options["data_dir"])
            self.memory = AttackMemory(store, embedder, poll_s=float(self.options.get("poll_s", 0.2)))
        self.memory.load()
        super().load()

    def version(self) -> str:
        """The embedding model's version."""
        return str(self.memory.embedder.version) if self.memory is not None else "unloaded"

    def close(self) -> None:
        """Persist the index and close a store this detector opened."""
        if self.memory is not None:
            self.memory.close()
        if self._own_store is not None:
            self._own_store.close()
            self._own_store = None

    def _limit(self, source: str) -> float:
        return self.seed_threshold if source.startswith("seed") else self.threshold

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """At most one finding: the best attack match over its threshold, else an allow match."""
        folded = views.folded
        emb = self._shared(folded.text, context) or self.memory.embedder.embed_text(folded.text, self.max_windows)
        queries = emb.vectors if len(emb.vectors) == 1 else np.vstack([emb.pooled[None, :], emb.vectors])
        self.memory.refresh()
        tenant = context.request.tenant or "default"
        attacks = self.memory.search(queries, tenant, "attack", self.k)
        allows = self.memory.search(queries, tenant, "benign", 3)
        over = [h for h in attacks if h.similarity >= self._limit(h.source)]
        best_allow = allows[0] if allows and allows[0].similarity >= self.allow_threshold else None
        nearest = ", ".join(f"{h.id} {h.similarity:.3f}" for h in attacks[: self.k])
        if over and (best_allow is None or over[0].similarity > best_allow.similarity):
            h = over[0]
            limit = self._limit(h.source)
            score = min(0.95, 0.5 + 0.45 * (h.similarity - limit) / max(1e-6, 1.0 - limit))
            span = self._span(views, emb, tenant)
            ev = excerpt(views.original, span.start, span.end) if span else ""
            return [Finding(self.name, f"memory:{h.id}", _category(h.category), score, 6, span, ev,
                            f"near-duplicate of {h.source} attack exemplar {h.id} (cosine {h.similarity:.3f} ≥ "
                            f"{limit:.2f}); nearest: {nearest}", "folded")]
        if best_allow is not None:
            return [Finding(self.name, f"memory:allow:{best_allow.id}", Category.PROMPT_INJECTION, 0.0, 0, None, "",
                            f"near-duplicate of confirmed benign exemplar {best_allow.id} (cosine "
                            f"{best_allow.similarity:.3f} ≥ {self.allow_threshold:.2f}); nearest attacks: "
                            f"{nearest or 'none'}", "folded", (ALLOW_TAG,))]
        return []

    def _shared(self, text: str, context: ScanContext) -> Any:
        """The embedding of ``text``'s first ``max_windows`` windows from the encoder's run in this scan, if
        it ran on every window of this very text with the graph that returns this embedder's hidden state."""
        shared = context.scores.get("window_embeddings") if self.options.get("reuse_encoder", True) else None
        if shared is None or shared[0] is not text or shared[1] != self.memory.embedder.version:
            return None
        from aimds.embed.model import Embedding

        n = max(1, self.max_windows)
        self.reused += 1
        return Embedding(shared[3][:n], tuple(shared[2][:n]))

    def _span(self, views: Views, emb: Any, tenant: str) -> Span | None:
        """The window most similar to an attack exemplar, in original offsets."""
        if not emb.spans:
            return None
        best, best_sim = 0, -2.0
        if len(emb.spans) > 1:
            for i, v in enumerate(emb.vectors):
                hits = self.memory.search(v[None, :], tenant, "attack", 1)
                if hits and hits[0].similarity > best_sim:
                    best, best_sim = i, hits[0].similarity
        s, e = emb.spans[best]
        os_, oe = views.folded.to_original(s, e)
        return Span(os_, oe) if oe > os_ else None
