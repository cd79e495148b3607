"""The live attack memory of one process: SQLite tables + in-memory vector index + embedder, kept in sync.

Changes made in this process reach the index at once; changes made by other worker processes are
picked up by :meth:`AttackMemory.refresh`, which reads the change log's head at most every ``poll_s``
seconds (default 0.2 s) and applies what is new. Without a store (library use with no data
directory) the memory holds the shipped seed only and is read-only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aimds.detect.evidence import excerpt as make_excerpt
from aimds.embed import Embedder, dequantize, quantize
from aimds.embed.model import DIM
from aimds.store.memory import GLOBAL, KINDS, MemoryStore, NewExemplar, load_seed, text_hash
from aimds.store.sqlite import SQLiteStore
from aimds.store.vector_index import Group, VectorIndex

log = logging.getLogger("aimds.store")

EXCERPT_CHARS = 120


@dataclass(frozen=True, slots=True)
class Hit:
    """One nearest exemplar."""

    id: str
    kind: str
    similarity: float
    category: str
    source: str
    namespace: str


class AttackMemory:
    """Exemplar search and updates for one process (thread-safe)."""

    def __init__(self, store: SQLiteStore | None, embedder: Embedder | None = None, *, poll_s: float = 0.2,
                 hnsw_min: int = 10_000, store_raw_text: bool = False, persist: bool = True) -> None:
        self.store = store
        self.tables = MemoryStore(store) if store is not None else None
        self._embedder = embedder
        self.poll_s = poll_s
        self.store_raw_text = store_raw_text
        self.persist = persist
        self.index = VectorIndex(DIM, hnsw_min=hnsw_min)
        self._meta: dict[int, tuple[str, str, str, str, Group]] = {}  # rid → (id, kind, category, source, group)
        self._by_id: dict[str, int] = {}
        self._lock = threading.RLock()
        self.head = 0
        self._checked = 0.0
        self.loaded = False

    @property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first use)."""
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = Embedder.load()
        return self._embedder

    # ----------------------------------------------------------------- loading and sync
    def load(self) -> AttackMemory:
        """Seed a fresh data directory, then build (or reload) the index."""
        with self._lock:
            if self.loaded:
                return self
            if self.tables is None:
                self._load_seed_only()
            else:
                self.tables.seed_once()
                self._build()
            self.loaded = True
        return self

    def _load_seed_only(self) -> None:
        seed = load_seed()
        if seed is None:
            return
        codes, ids, cats, sources, _ = seed
        group = (GLOBAL, "attack")
        for rid, (i, c, s) in enumerate(zip(ids, cats, sources, strict=True)):
            self._meta[rid] = (str(i), "attack", str(c), f"seed:{s}", group)
            self._by_id[str(i)] = rid
        self.index.add(group, np.arange(len(ids)), dequantize(codes))

    def _build(self) -> None:
        assert self.tables is not None and self.store is not None
        head = self.tables.head()
        folder = self.store.data_dir
        loaded = self.index.load(folder, head, self.embedder.version) if self.persist else None
        skip: set[Group] = set(loaded[1]) if loaded else set()
        batches: dict[Group, tuple[list[int], list[bytes]]] = {}
        for rid, eid, ns, kind, cat, src, emb in self.tables.active_vectors(self.embedder.version):
            group = (ns, kind)
            self._meta[rid] = (eid, kind, cat, src, group)
            self._by_id[eid] = rid
            if group not in skip:
                keys, blobs = batches.setdefault(group, ([], []))
                keys.append(rid)
                blobs.append(emb)
        stale = self.tables.stale(self.embedder.version)
        if stale:
            log.warning("attack memory: %d exemplar(s) embedded by another model (%s) are not searched; "
                        "re-add them from their text to use them", sum(stale.values()), ", ".join(sorted(stale)))
        for group, (keys, blobs) in batches.items():
            codes = np.frombuffer(b"".join(blobs), dtype=np.int8).reshape(len(keys), -1)
            self.index.add(group, keys, dequantize(codes))
        self.head = head
        if loaded:  # the saved graphs reflect loaded[0]: replay what changed since
            for _, eid, op in self.tables.changes_since(loaded[0]):
                if op == "remove" and eid in self._by_id:
                    rid = self._by_id[eid]
                    self.index.remove(rid, [self._meta[rid][4]])
            # additions after the snapshot: rows in skipped groups not yet in their graph
            for group in skip:
                g = self.index.groups.get(group)
                missing = [rid for rid, m in self._meta.items() if m[4] == group and not g.index.contains(rid)]  # type: ignore[union-attr]
                self._add_rows(self.tables.rows_by_id([self._meta[r][0] for r in missing]))

    def _add_rows(self, rows: Sequence[tuple[Any, ...]]) -> None:
        by_group: dict[Group, tuple[list[int], list[bytes]]] = {}
        for rid, eid, ns, kind, cat, src, emb, status, model in rows:
            group = (ns, kind)
            if status != "active" or model not in ("", self.embedder.version):  # removed, or another embedder's
                if eid in self._by_id:
                    self.index.remove(self._by_id[eid], [group])
                continue
            self._meta[rid] = (eid, kind, cat, src, group)
            self._by_id[eid] = rid
            keys, blobs = by_group.setdefault(group, ([], []))
            keys.append(rid)
            blobs.append(emb)
        for group, (keys, blobs) in by_group.items():
            codes = np.frombuffer(b"".join(blobs), dtype=np.int8).reshape(len(keys), -1)
            self.index.add(group, keys, dequantize(codes))

    def refresh(self, force: bool = False) -> int:
        """Apply changes other processes made (checked at most every ``poll_s``); returns how many."""
        if self.tables is None:
            return 0
        if not self.loaded:
            self.load()
            return 0
        now = time.monotonic()
        if not force and now - self._checked < self.poll_s:
            return 0
        self._checked = now
        if self.tables.head() <= self.head:
            return 0
        with self._lock:
            changes = self.tables.changes_since(self.head)
            if not changes:
                return 0
            if any(op == "reload" for _, _, op in changes):
                self.index = VectorIndex(DIM, hnsw_min=self.index.hnsw_min)
                self._meta.clear()
                self._by_id.clear()
                self._build()
                return len(changes)
            ids = list(dict.fromkeys(eid for _, eid, _ in changes))
            self._add_rows(self.tables.rows_by_id(ids))
            self.head = changes[-1][0]
            return len(changes)

    def close(self) -> None:
        """Persist HNSW groups (if any) beside the store."""
        if self.store is not None and self.persist and any(
                self.index.kind_of(g) == "hnsw" for g in self.index.groups):
            with self._lock:
                self.index.save(self.store.data_dir, self.head, self.embedder.version)

    # ----------------------------------------------------------------- search
    def search(self, vectors: np.ndarray, namespace: str, kind: str, k: int = 5) -> list[Hit]:
        """Nearest exemplars of ``kind`` in the global and the tenant's namespace."""
        if not self.loaded:
            self.load()
        groups = [(GLOBAL, kind)] + ([(namespace, kind)] if namespace != GLOBAL else [])
        with self._lock:
            found = self.index.search(vectors, groups, k)
            out = []
            for rid, sim in found:
                m = self._meta.get(rid)
                if m is not None:
                    out.append(Hit(m[0], m[1], sim, m[2], m[3], m[4][0]))
            return out

    def __len__(self) -> int:
        return len(self.index)

    # ----------------------------------------------------------------- updates
    def _prepare(self, text: str) -> tuple[np.ndarray, str, str | None, str]:
        from aimds.normalize import normalize

        vec = self.embedder.embed([normalize(text).folded.text], fold=False, max_windows=4)[0]
        exc = make_excerpt(text, 0, min(len(text), EXCERPT_CHARS * 4), EXCERPT_CHARS)
        return quantize(vec), exc, (text if self.store_raw_text else None), text_hash(text)

    def _tables(self) -> MemoryStore:
        if self.tables is None:
            raise RuntimeError("this memory has no store (read-only seed memory): give it a data directory")
        return self.tables

    def add_text(self, text: str, label: str, actor: str, *, namespace: str = GLOBAL, category: str = "",
                 note: str = "", source: str = "feedback") -> str:
        """Embed ``text`` and store it as an active exemplar, searchable at once in this process."""
        if label not in KINDS:
            raise ValueError(f"label must be one of {KINDS}")
        code, exc, raw, th = self._prepare(text)
        ids = self._tables().add([NewExemplar(kind=label, embedding=code, namespace=namespace, category=category,
                                              source=source, excerpt=exc, text=raw, text_hash=th, note=note,
                                              model=self.embedder.version)], actor)
        self.refresh(force=True)
        return ids[0]

    def submit(self, text: str, label: str, submitted_by: str, *, namespace: str = GLOBAL, category: str = "",
               note: str = "", event_id: str | None = None) -> str:
        """Queue a submission for review (no effect on verdicts until accepted)."""
        if label not in KINDS:
            raise ValueError(f"label must be one of {KINDS}")
        code, exc, raw, th = self._prepare(text)
        return self._tables().submit_review(label=label, embedding=code, namespace=namespace,
                                            submitted_by=submitted_by, category=category, note=note,
                                            event_id=event_id, excerpt=exc, text=raw, text_hash_=th,
                                            model=self.embedder.version)

    def decide(self, review_id: str, decision: str, actor: str) -> dict[str, Any] | None:
        """Accept or reject a pending review; an accepted one is searchable at once."""
        out = self._tables().decide_review(review_id, decision, actor)
        self.refresh(force=True)
        return out

    def remove(self, exemplar_id: str, actor: str, note: str = "") -> bool:
        """Remove an exemplar (audited, reversible)."""
        ok = self._tables().remove(exemplar_id, actor, note)
        self.refresh(force=True)
        return ok


def attach_memory(guard: Any, store: SQLiteStore, *, store_raw_text: bool = False) -> AttackMemory:
    """The service's memory over ``store``, bound to the guard's ``memory`` detector when it has one.

    Call before ``guard.load()``. The embedder is shared with the detector (loaded once).
    """
    from aimds.detect.memory import MemoryDetector

    mem = AttackMemory(store, store_raw_text=store_raw_text)
    for det in getattr(guard, "detectors", ()):
        if isinstance(det, MemoryDetector):
            det.bind(mem)
    return mem
