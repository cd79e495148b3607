"""Learned classifier versions (admin): list them, activate one (every worker swaps within ~1 s), roll back.

- ``GET /v1/models``: versions with their metrics, the active one, and what this worker runs.
- ``POST /v1/models/{version}/activate``: make a version (or ``shipped``) active; audited.
- ``POST /v1/models/rollback``: return to the active version's parent; audited.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from aimds.errors import ModelError
from aimds.server.deps import AdminKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS
from aimds.server.service import Service

router = APIRouter(tags=["models"])
_404 = {404: ERRORS[401]}
_VERSION = Path(max_length=128, pattern=r"^[A-Za-z0-9._-]+$")


def _registry(svc: Service) -> Any:
    reg = getattr(svc, "models", None)
    if reg is None:
        raise APIError(503, "models_unavailable", "model versions are not configured on this server")
    return reg


def _running(svc: Service) -> dict[str, Any]:
    reloader = getattr(svc, "reloader", None)
    return {"worker_version": reloader.current if reloader else None,
            "classifier": svc.guard.versions.get("classifier")}


@router.get("/v1/models", responses=ERRORS)
async def list_models(request: Request, principal: AdminKey) -> Response:
    """Registered versions (oldest first, ``shipped`` = the packaged model) and the active one."""
    svc = service(request)
    reg = _registry(svc)
    items = await asyncio.to_thread(reg.list)
    return json_response({"items": items, "active": next(i["version"] for i in items if i["active"]),
                          **_running(svc)})


async def _activate(svc: Service, version: str | None, actor: str, rollback: bool) -> Response:
    reg = _registry(svc)
    try:
        out = await asyncio.to_thread(reg.rollback if rollback else reg.activate,
                                      *((actor, version) if rollback else (version, actor)))
    except ModelError as exc:
        raise APIError(404 if "no model version" in str(exc) else 409, "model_unavailable", str(exc)) from None
    reloader = getattr(svc, "reloader", None)
    if reloader is not None:  # this worker at once; the others within their poll interval
        await asyncio.to_thread(reloader.check)
    return json_response({**out, **_running(svc)})


@router.post("/v1/models/rollback", responses={**ERRORS, **_404})
async def rollback_model(request: Request, principal: AdminKey) -> Response:
    """Activate the active version's parent (``shipped`` at the root)."""
    return await _activate(service(request), None, principal.id, rollback=True)


@router.post("/v1/models/{version}/activate", responses={**ERRORS, **_404})
async def activate_model(request: Request, principal: AdminKey, version: str = _VERSION) -> Response:
    """Make ``version`` the active model on every worker (audited)."""
    return await _activate(service(request), version, principal.id, rollback=False)
