"""Verdict cache for exact duplicates (optional, off by default: ``ServiceSettings.cache_ttl_s = 0``).

Per worker, a bounded LRU keyed by a hash of everything the verdict depends on:

- the **exact text** (every code point). That is stricter than "identical after normalisation": two
  inputs that fold to the same text can still differ in their evidence (invisible characters,
  homoglyphs and tag characters are obfuscation signals) and in their spans, so they never share a
  verdict. A near-duplicate — one character changed, added or removed — is a different key, so an
  ``allow`` is never reused for an input that is not byte-identical.
- the role, direction and tenant (the tenant's memory namespace);
- the versions of every detector and the policy (a hot-reloaded model changes the key) and the
  attack memory's change sequence (feedback invalidates at once instead of after the TTL).

Not cached: requests with a session (session analysis reads and appends the history), requests with
metadata, verdicts with detector errors (a transient failure must not be replayed for the TTL), and
verdicts whose decoding hit a bound (the next attempt may see more).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from aimds.types import ScanRequest, Verdict

HIT_NOTE = "cache: exact duplicate"


class VerdictCache:
    """A thread-safe, bounded LRU of verdicts with a time-to-live."""

    def __init__(self, ttl_s: float, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0 or max_entries <= 0:
            raise ValueError("ttl_s must be >= 0 and max_entries > 0")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[bytes, tuple[float, Verdict]] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "stores": 0, "evictions": 0}

    @property
    def enabled(self) -> bool:
        """False when the TTL is 0 (the default)."""
        return self.ttl_s > 0

    def __len__(self) -> int:
        return len(self._items)

    @staticmethod
    def cacheable(request: ScanRequest) -> bool:
        """Whether a request's verdict may be cached at all (no session, no metadata)."""
        return request.session_id is None and not request.metadata

    @staticmethod
    def key(request: ScanRequest, context: str) -> bytes:
        """The cache key of ``request``; ``context`` names the detector/policy versions and memory state."""
        h = hashlib.blake2b(digest_size=20)
        for part in (request.role.value, request.direction.value, request.tenant, context):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        h.update(request.text.encode("utf-8", "surrogatepass"))
        return h.digest()

    def get(self, key: bytes) -> Verdict | None:
        """The cached verdict (marked as a cache hit) or None when absent or expired."""
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] <= now:
                if item is not None:
                    del self._items[key]
                self.stats["misses"] += 1
                return None
            self._items.move_to_end(key)
            self.stats["hits"] += 1
            verdict = item[1]
        return replace(verdict, notes=(*verdict.notes, HIT_NOTE))

    def put(self, key: bytes, verdict: Verdict) -> bool:
        """Store ``verdict`` unless it must not be reused (errors, decoding bounds); True when stored."""
        if not self.enabled or verdict.errors or any(n.startswith("normalize:") for n in verdict.notes):
            return False
        with self._lock:
            self._items[key] = (self.clock() + self.ttl_s, verdict)
            self._items.move_to_end(key)
            self.stats["stores"] += 1
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
                self.stats["evictions"] += 1
        return True

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
