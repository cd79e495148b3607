"""Reversible redaction of PII and secrets: ``/v1/redact`` and ``/v1/restore`` (detector role)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aimds.detect.entities import find_entities
from aimds.respond.redact import redact, restore
from aimds.server.auth import Principal
from aimds.server.deps import DetectorKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS
from aimds.store.vault import SQLiteVault

router = APIRouter(tags=["privacy"])

_SCOPE = r"^[A-Za-z0-9_-]{8,128}$"


class RedactRequest(BaseModel):
    """Text to redact; pass the same ``scope`` for every turn of a conversation to keep placeholders stable."""

    model_config = ConfigDict(extra="forbid")

    text: str
    scope: str | None = Field(default=None, pattern=_SCOPE)
    ttl_s: float = Field(default=3600.0, gt=0, le=30 * 86400)


class RestoreRequest(BaseModel):
    """An LLM answer with placeholders, and the scope they came from."""

    model_config = ConfigDict(extra="forbid")

    text: str
    scope: str = Field(pattern=_SCOPE)


def _vault(request: Request, principal: Principal, scope: str | None) -> SQLiteVault:
    svc = service(request)
    vault: SQLiteVault = svc.vault
    owner = vault.owner_of(scope) if scope else None
    if owner is not None and owner != principal.id:
        if principal.role != "admin":
            raise APIError(403, "forbidden", "this redaction scope belongs to another key")
        return vault.for_owner(owner)
    return vault.for_owner(principal.id)


@router.post("/v1/redact", responses=ERRORS)
async def redact_text(body: RedactRequest, request: Request, principal: DetectorKey) -> Response:
    """Replace PII and secrets with placeholders (``<EMAIL_1>``); the values go to an encrypted vault scope."""
    svc = service(request)
    svc.check_size(body.text)
    vault = _vault(request, principal, body.scope)

    def work() -> dict[str, Any]:
        entities = find_entities(body.text)
        result = redact(body.text, entities, vault, body.scope, body.ttl_s)
        return {"text": result.text, "scope": result.scope, "placeholders": list(result.placeholders),
                "types": dict(result.types),
                "entities": [{"type": e.type, "category": str(e.category), "start": e.start, "end": e.end}
                             for e in entities]}

    return json_response(await asyncio.get_running_loop().run_in_executor(svc.executor, work))


@router.post("/v1/restore", responses=ERRORS)
async def restore_text(body: RestoreRequest, request: Request, principal: DetectorKey) -> Response:
    """Put the real values back in place of the placeholders of ``scope``."""
    svc = service(request)
    svc.check_size(body.text)
    vault = _vault(request, principal, body.scope)
    text = await asyncio.to_thread(restore, body.text, vault, body.scope)
    return json_response({"text": text})
