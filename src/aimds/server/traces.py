"""Per-worker trace monitors kept in step with the shared trace store."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from aimds.pipeline import Guard
from aimds.respond.policy.agent import AgentPolicy, PolicySet
from aimds.respond.traces import DEFAULT_CONFIRMATION_TTL_S, TraceDecision, TraceGuard, TraceState, token_id
from aimds.store.traces import TraceConflict, TraceStore


def confirmation_key(hash_key: bytes) -> bytes:
    """The key that signs confirmation tokens, derived from the deployment's input-hash key (same on every
    worker, kept in the data directory; a separate purpose, so a separate key)."""
    return hmac.new(hash_key, b"aimds/confirmation-token/v1", hashlib.sha256).digest()


class TraceManager:
    """Decides agent events against the current policy set, one trace at a time (per-trace lock)."""

    def __init__(self, guard: Guard, store: TraceStore, *, max_traces: int = 10_000,
                 policy_check_s: float = 1.0, confirmations: str = "token", confirmation_key: bytes | None = None,
                 confirmation_ttl_s: float = DEFAULT_CONFIRMATION_TTL_S) -> None:
        self.guard = guard
        self.store = store
        self.max_traces = max_traces
        self.policy_check_s = policy_check_s
        self._lock = threading.Lock()
        self._states: OrderedDict[str, tuple[int, TraceState]] = OrderedDict()   # trace → (policy version, state)
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
        with self._lock:
            cached = self._states.get(trace_id)
            if cached is not None and cached[0] == version:
                self._states.move_to_end(trace_id)
                state = cached[1]
            else:
                state = tg.new_trace(trace_id)
                self._states[trace_id] = (version, state)
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
        with self._trace_lock(trace_id):
            state = self._state(trace_id, version, tg)
            token = event.get("confirmation")
            if isinstance(token, str) and token_id(token) not in state.used \
                    and self.store.token_used(trace_id, token_id(token)):   # used through another worker
                state.used.add(token_id(token))
            decision = tg.decide(state, event)
            if not decision.committed:
                return decision, []
            try:
                stored = self.store.commit_step(trace_id, decision.step, decision.atoms,
                                                records(decision) if records else (), used_token=decision.used_token)
            except TraceConflict:
                with self._lock:
                    self._states.pop(trace_id, None)   # our state ran ahead: rebuild from the store next time
                raise
            return decision, stored

    def check(self, events: list[Mapping[str, Any]]) -> list[TraceDecision]:
        """A whole trace offline against the current policies (nothing stored)."""
        return self.trace_guard()[1].check(events)
