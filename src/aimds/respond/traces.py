"""Agent traces: scan each event, map it to atoms, check the temporal policies *before* the agent acts.

A :class:`TraceGuard` combines the detection pipeline (tool results and retrieved documents are
scanned as indirect-injection candidates; tool-call arguments for secrets and personal data), the
atom mapping rules (``data/policies/agent/atoms.yaml``) and a :class:`PolicySet` (LTLf monitors,
one per policy). :meth:`TraceGuard.decide` peeks first: an event whose step would violate a policy
with a stopping action (``block``, ``require_confirmation``, ``quarantine``) is refused and **not**
added to the trace — the agent did not perform it. Other violations (``alert``, ``escalate``) are
reported and the step is kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aimds.pipeline import Guard
from aimds.respond.policy.agent import PolicySet, Violation
from aimds.respond.policy.atoms import AtomMapper
from aimds.types import Direction, Role, ScanRequest, Verdict

STOPPING = frozenset({"block", "require_confirmation", "quarantine"})
#: Event types whose content comes from outside and may carry injected instructions.
READ_TYPES = frozenset({"tool_result", "document", "retrieval", "web_page", "email"})
MAX_ARGS_CHARS = 20_000


@dataclass(frozen=True)
class TraceDecision:
    """What to tell the agent about one event."""

    allowed: bool
    violations: tuple[Violation, ...]
    verdict: Verdict | None
    atoms: frozenset[str]
    step: int                      # the step index this event has (or would have had) in the trace
    committed: bool = True         # whether the event was added to the trace

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the trace API's response body)."""
        return {"allowed": self.allowed, "violations": [v.to_dict() for v in self.violations],
                "verdict": self.verdict.to_dict() if self.verdict is not None else None,
                "atoms": sorted(self.atoms), "step": self.step, "committed": self.committed}


@dataclass
class TraceGuard:
    """Scans agent events and monitors them against temporal policies."""

    guard: Guard
    policies: PolicySet = field(default_factory=PolicySet.load)
    mapper: AtomMapper = field(default_factory=AtomMapper.load)

    def new_trace(self) -> PolicySet:
        """Monitors for a new trace."""
        return self.policies.fresh()

    def scan_event(self, event: Mapping[str, Any]) -> Verdict | None:
        """The pipeline's verdict on what the event carries: content read from outside, or call arguments."""
        etype = str(event.get("type", ""))
        if etype == "tool_call" and event.get("args") is not None:
            args = event["args"]
            text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, default=str)
            return self.guard.scan(ScanRequest(text=text[:MAX_ARGS_CHARS], role=Role.TOOL,
                                               direction=Direction.OUTPUT))
        content = event.get("content")
        if isinstance(content, str) and content:
            role = Role.DOCUMENT if etype in READ_TYPES or event.get("source") not in (None, "user", "system") \
                else Role.USER if event.get("role") == "user" else Role.ASSISTANT
            if role is Role.ASSISTANT:
                return None  # the agent's own words are checked as output elsewhere
            return self.guard.scan(ScanRequest(text=content, role=role if etype not in ("tool_result",) else Role.TOOL,
                                               session_id=None))
        return None

    def atoms(self, event: Mapping[str, Any], verdict: Verdict | None) -> frozenset[str]:
        """The atoms of one event, with the verdict's categories as ``flagged:…`` atoms."""
        enriched = dict(event)
        if verdict is not None:
            enriched["verdict"] = {"action": str(verdict.threat_action or verdict.action),
                                   "categories": [str(c) for c in verdict.categories]}
        return frozenset(self.mapper.atoms(enriched))

    def decide(self, state: PolicySet, event: Mapping[str, Any], *, verdict: Verdict | None = None,
               scan: bool = True) -> TraceDecision:
        """Check one event against ``state`` (a trace's monitors) and commit it unless it is stopped."""
        if verdict is None and scan:
            verdict = self.scan_event(event)
        atoms = self.atoms(event, verdict)
        step = state.steps
        violations = state.peek(atoms)
        stopped = [v for v in violations if v.action in STOPPING]
        if stopped:
            return TraceDecision(False, tuple(violations), verdict, atoms, step, committed=False)
        reported = state.step(atoms)
        return TraceDecision(True, tuple(reported), verdict, atoms, step)

    def check(self, events: Iterable[Mapping[str, Any]]) -> list[TraceDecision]:
        """Run a whole trace offline (fresh monitors), deciding each event as the live API would."""
        state = self.new_trace()
        return [self.decide(state, e) for e in events]
