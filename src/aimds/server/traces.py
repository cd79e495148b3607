"""Per-worker trace monitors kept in step with the shared trace store.

With a *deep guard* (``trace_deep_scan: deferred``) content an agent reads (tool results, documents, web
pages) is scanned by the trace guard (a cheap detector subset) before the answer, and by the service's full
pipeline in the background; the next event of the trace that is not itself such a read — the action, the
dangerous moment — waits until every earlier deep scan has finished and its ``flagged:*`` atoms are in the
trace. A deep scan that never finishes (its worker died) is settled as flagged after ``deep_stale_s``: fail
closed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aimds.pipeline import Guard
from aimds.respond.policy.agent import AgentPolicy, PolicySet
from aimds.respond.traces import (
    DEFAULT_CONFIRMATION_TTL_S,
    READ_TYPES,
    TraceDecision,
    TraceGuard,
    TraceState,
    token_id,
)
from aimds.store.sqlite import StoreError
from aimds.store.traces import TraceConflict, TraceStore

log = logging.getLogger("aimds.server")
#: Atoms a read step gets when its deep scan failed or never finished: treated as injected content.
UNSCANNED = frozenset({"flagged:indirect_injection", "flagged:any", "flagged:unscanned"})


class DeepScanPending(StoreError):
    """An earlier read of the trace is still being scanned by the full pipeline; retry the event."""


def deferred_read(event: Mapping[str, Any]) -> bool:
    """Whether an event's scan can be deferred: content the agent read from outside (not an action)."""
    content = event.get("content")
    return (isinstance(content, str) and bool(content) and event.get("type") != "tool_call"
            and (event.get("type") in READ_TYPES or event.get("source") not in (None, "user", "system")))


def confirmation_key(hash_key: bytes) -> bytes:
    """The key that signs confirmation tokens, derived from the deployment's input-hash key (same on every
    worker, kept in the data directory; a separate purpose, so a separate key)."""
    return hmac.new(hash_key, b"aimds/confirmation-token/v1", hashlib.sha256).digest()


class TraceManager:
    """Decides agent events against the current policy set, one trace at a time (per-trace lock)."""

    def __init__(self, guard: Guard, store: TraceStore, *, max_traces: int = 10_000,
                 policy_check_s: float = 1.0, confirmations: str = "token", confirmation_key: bytes | None = None,
                 confirmation_ttl_s: float = DEFAULT_CONFIRMATION_TTL_S, deep_guard: Guard | None = None,
                 deep_wait_s: float = 5.0, deep_stale_s: float = 60.0) -> None:
        self.guard = guard
        self.store = store
        self.deep_guard = deep_guard
        self.deep_wait_s = deep_wait_s
        self.deep_stale_s = deep_stale_s
        self._deep_pool = ThreadPoolExecutor(1, thread_name_prefix="aimds-deep-scan") if deep_guard else None
        self.max_traces = max_traces
        self.policy_check_s = policy_check_s
        self._lock = threading.Lock()
        # trace → (policy version, deep-scan revision, state)
        self._states: OrderedDict[str, tuple[int, int, TraceState]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        extra = {"confirmation_key": confirmation_key} if confirmation_key is not None else {}
        self._tg = TraceGuard(guard, confirmations=confirmations, confirmation_ttl_s=confirmation_ttl_s, **extra)
        self._version = 0
        self._checked = 0.0

    def trace_guard(self) -> tuple[int, TraceGuard]:
        """The current policy version and a TraceGuard for it (reloaded when an admin changed the policies)."""
        now = time.monotonic()
        if now - self._checked >= self.policy_check_s:
            self._checked = now
            version, raw = self.store.policies()
            if version != self._version:
                policies = PolicySet.load() if raw is None else PolicySet(
                    [AgentPolicy.from_dict(p, source=f"policy set v{version}") for p in raw])
                with self._lock:
                    self._tg = dataclasses.replace(self._tg, policies=policies)
                    self._version = version
                    self._states.clear()
        return self._version, self._tg

    def invalidate(self) -> None:
        """Re-read the policy version on the next request (after this worker changed it)."""
        self._checked = 0.0

    def _trace_lock(self, trace_id: str) -> threading.Lock:
        with self._lock:
            lock = self._locks.get(trace_id)
            if lock is None:
                if len(self._locks) > 4 * self.max_traces:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[trace_id] = threading.Lock()
            return lock

    def _state(self, trace_id: str, version: int, tg: TraceGuard) -> TraceState:
        revision = self.store.revision(trace_id) if self.deep_guard is not None else 0
        with self._lock:
            cached = self._states.get(trace_id)
            if cached is not None and cached[0] == version and cached[1] == revision:
                self._states.move_to_end(trace_id)
                state = cached[2]
            else:   # new, other policies, or a deep scan amended a step: replay the trace from the store
                state = tg.new_trace(trace_id)
                self._states[trace_id] = (version, revision, state)
                while len(self._states) > self.max_traces:
                    self._states.popitem(last=False)
        for atoms in self.store.steps(trace_id, state.steps):  # catch up with other workers
            state.step(atoms)
        return state

    def decide(self, trace_id: str, event: Mapping[str, Any],
               records: Any = None) -> tuple[TraceDecision, list[dict[str, Any]]]:
        """Decide one event and, when allowed, commit its step durably together with ``records(decision)``.

        Returns the decision and the stored records (empty when refused: the caller records those).
        Raises TraceConflict when another worker committed the same step first.
        """
        version, tg = self.trace_guard()
        deferred = self.deep_guard is not None and deferred_read(event)
        if self.deep_guard is not None and not deferred:
            self.await_deep(trace_id)
        with self._trace_lock(trace_id):
            state = self._state(trace_id, version, tg)
            token = event.get("confirmation")
            if isinstance(token, str) and token_id(token) not in state.used \
                    and self.store.token_used(trace_id, token_id(token)):   # used through another worker
                state.used.add(token_id(token))
            decision = tg.decide(state, event)
            if not decision.committed:
                return decision, []
            if deferred:
                decision = dataclasses.replace(decision, deep_scan="pending")
            try:
                stored = self.store.commit_step(trace_id, decision.step, decision.atoms,
                                                records(decision) if records else (), used_token=decision.used_token,
                                                deep_pending=deferred)
            except TraceConflict:
                with self._lock:
                    self._states.pop(trace_id, None)   # our state ran ahead: rebuild from the store next time
                raise
            if deferred and self._deep_pool is not None:
                self._deep_pool.submit(self._deep_scan, trace_id, decision.step, dict(event), decision.atoms)
            return decision, stored

    def _deep_scan(self, trace_id: str, step: int, event: Mapping[str, Any], atoms: frozenset[str]) -> None:
        """The full pipeline on a read step's content; its extra ``flagged:*`` atoms amend the step."""
        try:
            deep = dataclasses.replace(self._tg, guard=self.deep_guard)
            verdict = deep.scan_event(event)
            found = deep.atoms(event, verdict)
            added = frozenset(a for a in found - atoms if a.startswith("flagged:"))
            if verdict is not None and verdict.errors:   # a detector failed: not a clean bill
                added |= UNSCANNED
        except Exception:   # fail closed: the content counts as injected
            log.exception("deep scan of trace %s step %d failed", trace_id, step)
            added = UNSCANNED
        try:
            self.store.finish_deep(trace_id, step, added)
        except StoreError:
            log.exception("deep scan of trace %s step %d could not be recorded", trace_id, step)

    def await_deep(self, trace_id: str) -> None:
        """Wait until the trace's earlier reads are deep-scanned (settling scans older than ``deep_stale_s`` as
        flagged); DeepScanPending after ``deep_wait_s``."""
        deadline = time.monotonic() + self.deep_wait_s
        delay = 0.002
        while True:
            pending = self.store.pending_deep(trace_id)
            if not pending:
                return
            now = time.time()
            for n, ts in pending:
                if now - ts > self.deep_stale_s:
                    self.store.finish_deep(trace_id, n, UNSCANNED)
            if time.monotonic() >= deadline:
                raise DeepScanPending(f"trace {trace_id!r}: the content read at step {pending[0][0]} is still "
                                      "being scanned; retry the event")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def close(self) -> None:
        """Finish the deep scans already started (their results are part of the trace)."""
        if self._deep_pool is not None:
            self._deep_pool.shutdown(wait=True)

    def check(self, events: list[Mapping[str, Any]]) -> list[TraceDecision]:
        """A whole trace offline against the current policies (nothing stored)."""
        return self.trace_guard()[1].check(events)
