"""Feedback, the review queue and the attack memory (issue 4).

- ``POST /v1/feedback``: ``analyst``/``admin`` feedback becomes an exemplar at once; ``detector``-role
  feedback goes to the review queue and changes nothing until an analyst accepts it.
- ``GET /v1/review``, ``POST /v1/review/{id}`` (analyst+): the queue and its decisions.
- ``GET /v1/memory``, ``DELETE /v1/memory/{id}`` (admin): list and remove exemplars.
"""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aimds.server.deps import AdminKey, AnalystKey, DetectorKey, service
from aimds.server.errors import APIError
from aimds.server.events import input_digest
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS
from aimds.server.service import Service

router = APIRouter(tags=["memory"])
_404 = {404: ERRORS[401]}


class FeedbackRequest(BaseModel):
    """A label for a past detection (``event_id``) or for a text."""

    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, max_length=64)
    text: str | None = None
    label: Literal["attack", "benign"]
    category: str = Field(default="", max_length=64)
    note: str = Field(default="", max_length=1000)
    tenant: str | None = Field(default=None, max_length=256, description="Namespace (default: the event's tenant)")


class ReviewDecision(BaseModel):
    """An analyst's decision on a queued submission."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"]


def _memory(svc: Service) -> Any:
    mem = getattr(svc, "memory", None)
    if mem is None or mem.tables is None:
        raise APIError(503, "memory_unavailable", "the attack memory is not configured on this server")
    return mem


def resolve_feedback(svc: Service, body: FeedbackRequest) -> tuple[str, dict[str, Any] | None, str]:
    """(text, event or None, namespace) for a feedback body; APIError when it cannot be used."""
    event = None
    if body.event_id:
        event = svc.store.get_event(body.event_id)
        if event is None or event.get("kind") != "event":
            raise APIError(404, "not_found", f"no event {body.event_id!r}")
    text = body.text
    if text is None:
        if event is None:
            raise APIError(422, "invalid_request", "feedback needs 'event_id' or 'text'")
        text = event.get("text")
        if text is None:
            raise APIError(422, "text_required", "this event's text is not stored (store_raw_text is off): "
                                                 "send the text with the event_id")
    elif event is not None and event.get("input_hmac") and not hmac.compare_digest(
            input_digest(text, svc.hash_key), str(event["input_hmac"])):
        raise APIError(422, "text_mismatch", "the text is not the one this event scanned")
    svc.check_size(text)
    if not text.strip():
        raise APIError(422, "invalid_request", "the text is empty")
    namespace = body.tenant or (event.get("tenant") if event else None) or "default"
    return text, event, namespace


@router.post("/v1/feedback", status_code=201, responses={**ERRORS, **_404})
async def feedback(body: FeedbackRequest, request: Request, principal: DetectorKey) -> Response:
    """Label a detection or a text. Analysts and admins apply it at once (201); a detector-role key's
    feedback is queued for review (202) and never changes a verdict before an analyst accepts it."""
    svc = service(request)
    mem = _memory(svc)
    text, event, namespace = await asyncio.to_thread(resolve_feedback, svc, body)
    if not principal.allows("analyst"):
        review_id = await asyncio.to_thread(mem.submit, text, body.label, principal.id, namespace=namespace,
                                            category=body.category, note=body.note, event_id=body.event_id)
        return json_response({"status": "pending_review", "review_id": review_id}, status=202)

    def apply() -> dict[str, Any]:
        ex_id = mem.add_text(text, body.label, principal.id, namespace=namespace, category=body.category,
                             note=body.note)
        outcome = mem.tables.log_outcome(label=body.label, actor=principal.id, event=event, category=body.category)
        return {"status": "applied", "exemplar_id": ex_id, "namespace": namespace,
                "outcome": {k: outcome[k] for k in ("verdict_action", "correct", "error", "deciders")}}

    return json_response(await asyncio.to_thread(apply), status=201)


@router.get("/v1/review", responses=ERRORS)
async def list_reviews(request: Request, principal: AnalystKey,
                       status: Literal["pending", "accepted", "rejected"] = "pending",
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Queued feedback (oldest first)."""
    mem = _memory(service(request))
    items = await asyncio.to_thread(mem.tables.list_reviews, status, limit)
    return json_response({"items": items})


@router.post("/v1/review/{review_id}", responses={**ERRORS, **_404})
async def decide_review(review_id: str, body: ReviewDecision, request: Request, principal: AnalystKey) -> Response:
    """Accept (the submission becomes an exemplar, effective at once) or reject a queued submission."""
    svc = service(request)
    mem = _memory(svc)

    def run() -> dict[str, Any] | None:
        out = mem.decide(review_id, body.decision, principal.id)
        if out is not None and out["status"] == "accepted":
            event = svc.store.get_event(out["event_id"]) if out.get("event_id") else None
            mem.tables.log_outcome(label=out["label"], actor=principal.id, event=event, category=out["category"])
        return out

    out = await asyncio.to_thread(run)
    if out is None:
        raise APIError(404, "not_found", f"no pending review {review_id!r}")
    return json_response(out)


@router.get("/v1/memory", responses=ERRORS)
async def list_memory(request: Request, principal: AdminKey,
                      kind: Literal["attack", "benign"] | None = None,
                      namespace: Annotated[str | None, Query(max_length=256)] = None,
                      status: Literal["active", "removed"] = "active",
                      source: Annotated[str | None, Query(max_length=128)] = None,
                      cursor: Annotated[int | None, Query(ge=0, le=2**62)] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Exemplars, newest first; follow ``next_cursor``."""
    mem = _memory(service(request))
    items, nxt = await asyncio.to_thread(mem.tables.list, namespace=namespace, kind=kind, status=status,
                                         source=source, limit=limit, cursor=cursor)
    return json_response({"items": [e.to_dict() for e in items], "next_cursor": nxt,
                          "counts": await asyncio.to_thread(mem.tables.count),
                          "stale": await asyncio.to_thread(mem.tables.stale, mem.embedder.version)})


@router.delete("/v1/memory/{exemplar_id}", responses={**ERRORS, **_404})
async def remove_memory(exemplar_id: str, request: Request, principal: AdminKey) -> Response:
    """Remove an exemplar (audited; ``aimds memory import`` of an export restores it)."""
    mem = _memory(service(request))
    if not await asyncio.to_thread(mem.remove, exemplar_id, principal.id):
        raise APIError(404, "not_found", f"no active exemplar {exemplar_id!r}")
    return json_response({"id": exemplar_id, "removed": True})
