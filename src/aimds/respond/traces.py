"""Agent traces: scan each event, map it to atoms, check the temporal policies *before* the agent acts.

A :class:`TraceGuard` combines the detection pipeline (tool results and retrieved documents are
scanned as indirect-injection candidates; tool-call arguments for secrets and personal data), the
atom mapping rules (``data/policies/agent/atoms.yaml``) and a :class:`PolicySet` (LTLf monitors,
one per policy). :meth:`TraceGuard.decide` peeks first: an event whose step would violate a policy
with a stopping action (``block``, ``require_confirmation``, ``quarantine``) is refused and **not**
added to the trace — the agent did not perform it. Other violations (``alert``, ``escalate``) are
reported and the step is kept.

Confirmations are bound to the action they approve. A step refused by policies that a confirmation
satisfies (``require_confirmation``, and ``block`` policies of the "until the user confirms" kind; a
refusal no confirmation would lift gets none) comes back with a :class:`Confirmation`: a token, HMAC-signed over the
trace, the step, the SHA-256 digest of the refused action (canonical JSON of its type, tool and
args) and an expiry. After the human said yes, the runtime re-sends the *same* action with
``"confirmation": token``; :meth:`TraceGuard.decide` sets ``user:confirmed`` on that step only if
the token verifies, has not expired, belongs to this trace, matches the action's digest and was
not used before (tokens are single-use). In ``token`` mode (the default) nothing else confirms:
``confirmed``/``approved`` flags, approval events and caller-given ``user:confirmed`` atoms become
``user:confirmed_unbound``, which no policy accepts — a confirmation given for one action cannot
unlock another, and a model that makes the runtime forward ``confirmed: true`` approves nothing.
``legacy`` mode keeps the unbound forms as confirmations (runtimes that cannot carry a token).
The token goes to the runtime, never to the model: a runtime that shows AIMDS responses to the
model gives the model the means to approve its own actions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Final

from aimds.pipeline import Guard
from aimds.respond.policy.agent import PolicySet, Violation
from aimds.respond.policy.atoms import AtomMapper
from aimds.types import Direction, Role, ScanRequest, Verdict

STOPPING = frozenset({"block", "require_confirmation", "quarantine"})
#: Refusals a confirmation token may lift (when ``user:confirmed`` on the step would satisfy every stopping
#: policy: "until the user confirms" policies block, and quarantine is never lifted).
LIFTABLE = frozenset({"block", "require_confirmation"})
#: Event types whose content comes from outside and may carry injected instructions.
READ_TYPES = frozenset({"tool_result", "document", "retrieval", "web_page", "email"})
MAX_ARGS_CHARS = 20_000

CONFIRMED: Final = "user:confirmed"
UNBOUND: Final = "user:confirmed_unbound"
CONFIRMATION_MODES: Final = ("token", "legacy")
DEFAULT_CONFIRMATION_TTL_S: Final = 900.0   # data/response/actions.yaml: require_confirmation ttl_s
MAX_TOKEN_CHARS: Final = 1024
_TOKEN_CONTEXT: Final = b"aimds-confirmation-v1."


def action_digest(event: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of the event's action: type, tool and args, sorted keys, no whitespace."""
    action = {"type": event.get("type"), "tool": event.get("tool"), "args": event.get("args")}
    canonical = json.dumps(action, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def confirm_atoms(atoms: frozenset[str], *, bound: bool, mode: str = "token") -> frozenset[str]:
    """The atoms with ``user:confirmed`` as ``mode`` allows: set by a verified token (``bound``), or in ``legacy``
    mode by the unbound forms too; otherwise an unbound confirmation (a flag, an approval event, a caller-given
    ``user:confirmed``) is ``user:confirmed_unbound``."""
    unbound = CONFIRMED in atoms or UNBOUND in atoms
    out = set(atoms - {CONFIRMED})
    if unbound:
        out.add(UNBOUND)
    if bound or (unbound and mode == "legacy"):
        out.add(CONFIRMED)
    return frozenset(out)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Confirmation:
    """A confirmation token issued for one refused action of one trace."""

    token: str
    action_digest: str
    expires_at: float           # Unix time
    step: int                   # the step at which the action was refused

    @property
    def token_id(self) -> str:
        """What the trace remembers once the token is used."""
        return token_id(self.token)

    def to_dict(self) -> dict[str, Any]:
        """The ``confirmation`` object of the trace API's response."""
        return {"token": self.token, "action_digest": self.action_digest, "expires_at": self.expires_at}


def token_id(token: str) -> str:
    """A token's identity for the used-token record (its signature part; the token itself is not stored)."""
    return token.rpartition(".")[2][:64]


@dataclass
class TraceState:
    """One trace: its policy monitors, its id (tokens are bound to it) and the confirmation tokens it used."""

    monitors: PolicySet
    trace_id: str
    used: set[str] = field(default_factory=set)

    @property
    def steps(self) -> int:
        """How many steps the trace has committed."""
        return self.monitors.steps

    def step(self, atoms: Set[str]) -> list[Violation]:
        """Commit one step (see :meth:`PolicySet.step`)."""
        return self.monitors.step(atoms)

    def peek(self, atoms: Set[str]) -> list[Violation]:
        """The violations one more step would report (see :meth:`PolicySet.peek`)."""
        return self.monitors.peek(atoms)

    def finish(self) -> list[Violation]:
        """End the trace (see :meth:`PolicySet.finish`)."""
        return self.monitors.finish()


@dataclass(frozen=True)
class TraceDecision:
    """What to tell the agent about one event."""

    allowed: bool
    violations: tuple[Violation, ...]
    verdict: Verdict | None
    atoms: frozenset[str]
    step: int                      # the step index this event has (or would have had) in the trace
    committed: bool = True         # whether the event was added to the trace
    confirmation: Confirmation | None = None   # issued: the refusal can be lifted by confirming this action
    confirmation_status: str | None = None     # a presented token: "accepted" or why it was not
    used_token: str | None = None              # the token id this committed step used up
    deep_scan: str | None = None               # "pending": the full pipeline scans this read in the background

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (the trace API's response body)."""
        return {"allowed": self.allowed, "violations": [v.to_dict() for v in self.violations],
                "verdict": self.verdict.to_dict() if self.verdict is not None else None,
                "atoms": sorted(self.atoms), "step": self.step, "committed": self.committed,
                "confirmation": self.confirmation.to_dict() if self.confirmation is not None else None,
                "confirmation_status": self.confirmation_status, "deep_scan": self.deep_scan}


@dataclass
class TraceGuard:
    """Scans agent events and monitors them against temporal policies.

    ``confirmations`` is ``token`` (only a bound, single-use token confirms; the default in the library
    as in the service, since an in-process runtime forwarding a model's ``confirmed: true`` is the same
    hole) or ``legacy`` (flags and approval events confirm too). ``confirmation_key`` signs tokens; the
    default is random per instance, so tokens verify only with the TraceGuard that issued them.
    """

    guard: Guard
    policies: PolicySet = field(default_factory=PolicySet.load)
    mapper: AtomMapper = field(default_factory=AtomMapper.load)
    confirmations: str = "token"
    confirmation_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    confirmation_ttl_s: float = DEFAULT_CONFIRMATION_TTL_S

    def __post_init__(self) -> None:
        if self.confirmations not in CONFIRMATION_MODES:
            raise ValueError(f"confirmations must be one of {CONFIRMATION_MODES}, got {self.confirmations!r}")
        if len(self.confirmation_key) < 16 or self.confirmation_ttl_s <= 0:
            raise ValueError("confirmation_key needs 16 bytes or more and confirmation_ttl_s must be positive")

    def new_trace(self, trace_id: str | None = None) -> TraceState:
        """State for a new trace (a random id when none is given: tokens never cross traces)."""
        return TraceState(self.policies.fresh(), trace_id if trace_id is not None else secrets.token_hex(12))

    def _mac(self, trace_id: str, payload: str) -> bytes:
        msg = _TOKEN_CONTEXT + trace_id.encode("utf-8") + b"." + payload.encode("ascii")
        return hmac.new(self.confirmation_key, msg, hashlib.sha256).digest()

    def issue_confirmation(self, trace_id: str, step: int, event: Mapping[str, Any], *,
                           now: float | None = None) -> Confirmation:
        """A token that confirms exactly this action (type, tool, args) in this trace, until it expires."""
        digest = action_digest(event)
        expires = float(int((time.time() if now is None else now) + self.confirmation_ttl_s))
        body = {"s": step, "d": digest, "e": int(expires), "n": secrets.token_hex(8)}
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return Confirmation(f"{payload}.{_b64(self._mac(trace_id, payload))}", digest, expires, step)

    def verify_confirmation(self, trace_id: str, token: object, event: Mapping[str, Any], *,
                            used: Set[str] = frozenset(), now: float | None = None) -> str:
        """``accepted``, or why ``token`` does not confirm ``event`` in this trace: ``malformed``,
        ``invalid`` (forged, altered or another trace's), ``expired``, ``action_mismatch`` or ``used``."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return "malformed"
        payload, _, sig = token.partition(".")
        try:
            given = _unb64(sig)
        except ValueError:
            return "malformed"
        if not hmac.compare_digest(given, self._mac(trace_id, payload)):
            return "invalid"
        try:
            body = json.loads(_unb64(payload))
            expires, digest = float(body["e"]), str(body["d"])
        except (ValueError, KeyError, TypeError):
            return "malformed"
        if (time.time() if now is None else now) >= expires:
            return "expired"
        if not hmac.compare_digest(digest, action_digest(event)):
            return "action_mismatch"
        if token_id(token) in used:
            return "used"
        return "accepted"

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

    def decide(self, state: TraceState | PolicySet, event: Mapping[str, Any], *, verdict: Verdict | None = None,
               scan: bool = True, now: float | None = None) -> TraceDecision:
        """Check one event against ``state`` (a trace) and commit it unless it is stopped.

        An event carrying ``"confirmation"`` is confirmed when the token verifies for it (and the token is
        then used up); a step refused only by policies that ``user:confirmed`` on it would satisfy comes
        back with a new token. A bare :class:`PolicySet` (no trace identity) gets no
        tokens and accepts none."""
        trace = state if isinstance(state, TraceState) else None
        if verdict is None and scan:
            verdict = self.scan_event(event)
        status: str | None = None
        token = event.get("confirmation")
        if token is not None:
            status = "no_trace" if trace is None else self.verify_confirmation(
                trace.trace_id, token, event, used=trace.used, now=now)
        bound = status == "accepted"
        atoms = confirm_atoms(self.atoms(event, verdict), bound=bound, mode=self.confirmations)
        step = state.steps
        violations = state.peek(atoms)
        stopped = [v for v in violations if v.action in STOPPING]
        if stopped:
            issued = None
            if (trace is not None and not bound and all(v.action in LIFTABLE for v in stopped)
                    and not [v for v in state.peek(atoms | {CONFIRMED}) if v.action in STOPPING]):
                issued = self.issue_confirmation(trace.trace_id, step, event, now=now)
            return TraceDecision(False, tuple(violations), verdict, atoms, step, committed=False,
                                 confirmation=issued, confirmation_status=status)
        reported = state.step(atoms)
        used = None
        if bound and trace is not None:
            used = token_id(str(token))
            trace.used.add(used)
        return TraceDecision(True, tuple(reported), verdict, atoms, step, confirmation_status=status,
                             used_token=used)

    def check(self, events: Iterable[Mapping[str, Any]]) -> list[TraceDecision]:
        """Run a whole trace offline (fresh monitors), deciding each event as the live API would."""
        state = self.new_trace()
        return [self.decide(state, e) for e in events]
