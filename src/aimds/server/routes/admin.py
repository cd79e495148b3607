"""Administration (admin role): API keys and the running configuration."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from aimds.server.deps import AdminKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS, KeyRequest

router = APIRouter(tags=["admin"])


@router.post("/v1/keys", status_code=201, responses=ERRORS)
async def create_key(body: KeyRequest, request: Request, principal: AdminKey) -> Response:
    """Create an API key; the key is in this response only (the store keeps a hash)."""
    svc = service(request)
    key, secret = await asyncio.to_thread(svc.store.create_key, body.role, body.name, principal.id)
    return json_response({"id": key.id, "key": secret, "role": key.role, "name": key.name}, status=201)


@router.get("/v1/keys", responses=ERRORS)
async def list_keys(request: Request, principal: AdminKey) -> Response:
    """All keys (without secrets)."""
    keys = await asyncio.to_thread(service(request).store.list_keys)
    return json_response({"items": [k.to_dict() for k in keys]})


@router.delete("/v1/keys/{key_id}", responses={**ERRORS, 404: ERRORS[401]})
async def revoke_key(key_id: str, request: Request, principal: AdminKey) -> Response:
    """Revoke a key (effective on every worker within ``key_cache_s``)."""
    svc = service(request)
    if not await asyncio.to_thread(svc.store.revoke_key, key_id, principal.id):
        raise APIError(404, "not_found", f"no active key {key_id!r}")
    svc.auth.forget(key_id)
    return json_response({"id": key_id, "revoked": True})


@router.get("/v1/config", responses=ERRORS)
async def get_config(request: Request, principal: AdminKey) -> Response:
    """The running settings (no key material) and detector versions."""
    svc = service(request)
    return json_response({"settings": svc.settings.public_view(), "versions": svc.guard.versions,
                          "policy": svc.guard.policy.name})
