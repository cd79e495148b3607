"""Health, readiness, metrics and (authenticated) API docs."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse, Response

from aimds.server.deps import DetectorKey, require, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS

router = APIRouter(tags=["system"])


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz")
async def healthz() -> Response:
    """Liveness: the process answers (no auth)."""
    return json_response({"status": "ok"})


@router.get("/readyz", responses=ERRORS)
async def readyz(request: Request, principal: DetectorKey) -> Response:
    """Readiness: models loaded and the store readable and writing."""
    svc = service(request)
    if not svc.ready:
        raise APIError(503, "not_ready", "models are still loading")
    try:
        await asyncio.to_thread(svc.store.ping)
    except Exception as exc:
        raise APIError(503, "not_ready", f"store: {exc}") from None
    return json_response({"status": "ready", "versions": svc.guard.versions})


@router.get("/metrics", responses=ERRORS)
async def metrics(request: Request, principal: DetectorKey) -> Response:
    """Prometheus text format (aggregated over all worker processes)."""
    svc = service(request)
    svc.metrics.store_queue.set(svc.store.queue_depth)
    return Response(svc.metrics.render(), media_type=svc.metrics.content_type)


def docs_router(public: bool) -> APIRouter:
    """``/openapi.json`` and ``/docs``, behind auth unless ``public``."""
    docs = APIRouter(include_in_schema=False)
    deps = [] if public else [Depends(require("detector"))]

    @docs.get("/openapi.json", dependencies=deps)
    async def openapi(request: Request) -> Response:
        return json_response(request.app.openapi())

    @docs.get("/docs", dependencies=deps)
    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="AIMDS API")

    return docs
