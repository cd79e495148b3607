"""Agent defense: trace events checked against temporal policies before the agent acts; policy management."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aimds.errors import ConfigError
from aimds.respond.policy import ltl
from aimds.respond.policy.agent import AgentPolicy, PolicySet
from aimds.respond.policy.progression import check_trace
from aimds.respond.traces import TraceDecision
from aimds.server.auth import Principal
from aimds.server.deps import AdminKey, AnalystKey, DetectorKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS
from aimds.server.traces import DeepScanPending
from aimds.store.sqlite import new_id
from aimds.store.traces import TraceConflict
from aimds.types import Action, Role, ScanRequest, Verdict

router = APIRouter(tags=["agent"])
_TRACE_ID = r"^[A-Za-z0-9_.:-]{1,128}$"


class TraceEvent(BaseModel):
    """One agent event: a message, a tool call (with arguments) or a tool result / retrieved document."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64, description="message | tool_call | tool_result | document | …")
    role: str | None = Field(default=None, max_length=32)
    tool: str | None = Field(default=None, max_length=128)
    args: Any = None
    content: str | None = None
    source: str | None = Field(default=None, max_length=64)
    confirmed: bool | None = None
    confirmation: str | None = Field(default=None, max_length=1024,
                                     description="the token a require_confirmation refusal returned, re-sent with "
                                                 "the same action once the user approved it")
    atoms: list[str] | None = Field(default=None, max_length=256)


class CheckRequest(BaseModel):
    """A whole trace to check offline: agent events, or atom steps (optionally against one formula)."""

    model_config = ConfigDict(extra="forbid")

    events: list[TraceEvent] | None = Field(default=None, max_length=10_000)
    trace: list[list[str]] | None = Field(default=None, max_length=100_000)
    formula: str | None = Field(default=None, max_length=20_000)


class PolicyBody(BaseModel):
    """A new agent-policy set (replaces the current one; the shipped library when empty)."""

    model_config = ConfigDict(extra="forbid")

    policies: list[dict[str, Any]] = Field(max_length=1000)


def _event_dict(event: TraceEvent) -> dict[str, Any]:
    return event.model_dump(exclude_none=True)


def _check_trace_id(trace_id: str) -> None:
    if not trace_id or len(trace_id) > 128 or not all(c.isalnum() or c in "_.:-" for c in trace_id):
        raise APIError(422, "invalid_request", "trace_id: 1–128 characters of A–Z a–z 0–9 _ . : -")


def _check_sizes(request: Request, event: TraceEvent) -> None:
    svc = service(request)
    if event.content is not None:
        svc.check_size(event.content)
    if event.args is not None:
        svc.check_size(json.dumps(event.args, default=str) if not isinstance(event.args, str) else event.args)


def _record(svc: Any, principal: Principal, trace_id: str, event: dict[str, Any], d: TraceDecision,
            violation_ids: list[str]) -> dict[str, Any]:
    verdict = d.verdict or Verdict(Action.ALLOW, 0.0, (), (), {})
    text = event.get("content") or json.dumps(event.get("args", ""), default=str)
    req = ScanRequest(text=str(text), role=Role.TOOL, session_id=trace_id)
    rec = svc.event(req, verdict, principal, "/v1/traces/{trace_id}/events")
    rec.update({"trace_id": trace_id, "step": d.step, "event_type": str(event.get("type")),
                "tool": event.get("tool"), "allowed": d.allowed, "committed": d.committed,
                "confirmation": d.confirmation_status, "confirmation_issued": d.confirmation is not None,
                "action": rec["action"] if d.allowed else "block",
                "violations": [{**v.to_dict(), "id": vid} for v, vid in zip(d.violations, violation_ids, strict=True)],
                "rules": rec["rules"] + [f"policy:{v.policy_id}" for v in d.violations]})
    return rec


@router.post("/v1/traces/{trace_id}/events", responses={**ERRORS, 409: ERRORS[401]})
async def trace_event(trace_id: str, body: TraceEvent, request: Request, principal: DetectorKey) -> Response:
    """Append an agent event and answer, before the agent acts, whether it may: ``{"allowed", "violations",
    "verdict", "atoms", "step", "confirmation", "confirmation_status"}``. Tool results and documents are
    scanned for indirect injection, tool arguments for secrets and personal data; a refused event is not
    added to the trace. A refusal that the user's confirmation would lift carries ``confirmation``
    (``{"token", "action_digest", "expires_at"}``): re-send the same action with ``"confirmation": token``
    once the user said yes (single-use, bound to this trace and action; never show it to the model)."""
    svc = service(request)
    _check_trace_id(trace_id)
    _check_sizes(request, body)
    event = _event_dict(body)
    holder: dict[str, Any] = {}

    def records(d: TraceDecision) -> list[dict[str, Any]]:
        holder["vids"] = [new_id("vio") for _ in d.violations]
        return [_record(svc, principal, trace_id, event, d, holder["vids"])]

    loop = asyncio.get_running_loop()
    try:
        decision, stored = await asyncio.wait_for(
            loop.run_in_executor(svc.executor, svc.traces.decide, trace_id, event, records),
            svc.settings.request_timeout_s)
    except TraceConflict as exc:
        raise APIError(409, "conflict", f"{exc}; retry the event") from None
    except DeepScanPending as exc:
        raise APIError(503, "scan_pending", str(exc), headers={"Retry-After": "1"}) from None
    except TimeoutError:
        raise APIError(503, "timeout", "the trace check took too long") from None
    if not stored:  # refused: not part of the trace, but audited
        holder["vids"] = [new_id("vio") for _ in decision.violations]
        stored = await svc.record([_record(svc, principal, trace_id, event, decision, holder["vids"])])
    else:
        svc.respond(stored)
    evidence = body.content or (json.dumps(body.args, default=str)[:4000] if body.args is not None else "")
    svc.on_violations(decision.violations, holder["vids"], trace_id, stored[0]["id"], evidence)
    return json_response({"trace_id": trace_id, "event_id": stored[0]["id"], **decision.to_dict()})


@router.get("/v1/traces/{trace_id}", responses=ERRORS)
async def get_trace(trace_id: str, request: Request, principal: AnalystKey) -> Response:
    """A trace as stored: its committed steps with their atoms (what the policies saw) and, for reads scanned
    in the background, the deep scan's state and the ``flagged:*`` atoms it added. 404 for an unknown trace."""
    svc = service(request)
    _check_trace_id(trace_id)
    steps = await asyncio.to_thread(svc.traces.store.detail, trace_id)
    if not steps:
        raise APIError(404, "not_found", f"no trace {trace_id!r}")
    return json_response({"trace_id": trace_id, "steps": steps})


@router.post("/v1/policies/check", responses=ERRORS)
async def check_policies(body: CheckRequest, request: Request, principal: DetectorKey) -> Response:
    """Check a whole trace offline (nothing is stored): agent ``events`` through the pipeline and the current
    policies, or atom steps (``trace``) against the current policies or one ``formula``."""
    svc = service(request)
    if (body.events is None) == (body.trace is None):
        raise APIError(422, "invalid_request", "give exactly one of 'events' or 'trace'")
    if body.events is not None:
        if body.formula is not None:
            raise APIError(422, "invalid_request", "'formula' goes with 'trace' (atom steps)")
        for e in body.events:
            _check_sizes(request, e)
        events = [_event_dict(e) for e in body.events]
        decisions = await asyncio.get_running_loop().run_in_executor(svc.executor, svc.traces.check, events)
        return json_response({"decisions": [d.to_dict() for d in decisions],
                              "allowed": all(d.allowed for d in decisions)})
    trace = [frozenset(step) for step in body.trace or []]
    if body.formula is not None:
        try:
            satisfied, step = check_trace(ltl.parse(body.formula), trace)
        except ltl.FormulaError as exc:
            raise APIError(422, "invalid_formula", str(exc), ) from None
        return json_response({"satisfied": satisfied, "violation_step": step})
    policies: PolicySet = svc.traces.trace_guard()[1].policies
    violations = policies.check(trace)
    return json_response({"satisfied": not violations, "violations": [v.to_dict() for v in violations]})


def _policy_view(p: AgentPolicy) -> dict[str, Any]:
    return {"id": p.id, "description": p.description, "formula": p.text, "severity": p.severity,
            "action": p.action, "tags": list(p.tags)}


@router.get("/v1/policies", responses=ERRORS)
async def get_policies(request: Request, principal: AdminKey) -> Response:
    """The agent policies in force and their version (0: the shipped library)."""
    version, tg = service(request).traces.trace_guard()
    return json_response({"version": version, "policies": [_policy_view(p) for p in tg.policies.policies]})


@router.put("/v1/policies", responses=ERRORS)
async def put_policies(body: PolicyBody, request: Request, principal: AdminKey,
                       mode: Literal["replace"] = "replace") -> Response:
    """Replace the agent policies (validated first; errors point at the policy and the formula position).
    Audited; every worker uses the new set within a second."""
    svc = service(request)
    parsed = []
    for i, raw in enumerate(body.policies):
        try:
            parsed.append(AgentPolicy.from_dict(raw, source=f"policies[{i}]"))
        except ltl.FormulaError as exc:
            return json_response({"error": {"code": "invalid_policy", "message": str(exc), "index": i,
                                            "policy_id": raw.get("id"), "position": exc.position}}, status=422)
        except ConfigError as exc:
            raise APIError(422, "invalid_policy", str(exc)) from None
    try:
        PolicySet(parsed)
    except ConfigError as exc:
        raise APIError(422, "invalid_policy", str(exc)) from None
    version = await asyncio.to_thread(svc.traces.store.put_policies, list(body.policies), principal.id)
    svc.traces.invalidate()
    return json_response({"version": version, "policies": [_policy_view(p) for p in parsed]})
