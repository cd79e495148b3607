"""Reading events and verifying the audit chain (analyst role)."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aimds.server.deps import AnalystKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS
from aimds.store.base import EventQuery
from aimds.types import Category

router = APIRouter(tags=["events"])

ActionName = Literal["allow", "monitor", "sanitize", "redact", "challenge", "escalate", "block"]


def parse_time(value: str | None, field: str) -> float | None:
    """Epoch seconds or ISO 8601 → epoch seconds."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise APIError(422, "invalid_request", f"{field}: must be a finite time, got {value!r}")
        return number
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise APIError(422, "invalid_request", f"{field}: expected epoch seconds or ISO 8601, got {value!r}") from None
    if dt.tzinfo is None:
        raise APIError(422, "invalid_request", f"{field}: ISO 8601 time needs a time zone")
    return dt.timestamp()


@router.get("/v1/events", responses=ERRORS)
async def list_events(request: Request, principal: AnalystKey,
                      since: Annotated[str | None, Query(description="Epoch seconds or ISO 8601 (inclusive).")] = None,
                      until: Annotated[str | None, Query(description="Epoch seconds or ISO 8601 (exclusive).")] = None,
                      action: ActionName | None = None,
                      category: Category | None = None,
                      session_id: Annotated[str | None, Query(max_length=256)] = None,
                      cursor: Annotated[int | None, Query(ge=0, le=2**62, description="next_cursor of the last page")]
                      = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Response:
    """Events, newest first, filtered; follow ``next_cursor`` for older ones."""
    svc = service(request)
    query = EventQuery(since=parse_time(since, "since"), until=parse_time(until, "until"),
                       action=action, category=str(category) if category else None, session_id=session_id,
                       cursor=cursor, limit=limit)
    page = await asyncio.to_thread(svc.store.list_events, query)
    return json_response({"items": page.items, "next_cursor": page.next_cursor})


@router.get("/v1/events/{event_id}", responses={**ERRORS, 404: ERRORS[401]})
async def get_event(event_id: str, request: Request,
                    principal: AnalystKey) -> Response:
    """One event (or audited admin action) by id."""
    svc = service(request)
    record = await asyncio.to_thread(svc.store.get_event, event_id)
    if record is None:
        raise APIError(404, "not_found", f"no event {event_id!r}")
    return json_response(record)


@router.get("/v1/audit/verify", responses=ERRORS)
async def audit_verify(request: Request, principal: AnalystKey) -> Response:
    """Verify the hash chain and signed checkpoints; reports the first record where the chain breaks."""
    svc = service(request)
    report = await asyncio.to_thread(svc.store.verify)
    return json_response(report.to_dict())
