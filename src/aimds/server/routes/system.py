"""Health, readiness, metrics and (authenticated) API docs."""

from __future__ import annotations

import asyncio
import mimetypes
from functools import cache
from pathlib import Path

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


#: The Swagger UI files /docs needs, served from the installed ``swagger-ui-bundle-v2`` package: the
#: docs page loads nothing from a CDN (the service runs offline, and no browser leaks where it is used).
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


@cache
def _asset(name: str) -> tuple[bytes, str] | None:
    """Bytes and media type of one Swagger UI file, or None when the package is missing."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    path = Path(str(swagger_ui_path)) / name
    if not path.is_file():
        return None
    return path.read_bytes(), mimetypes.guess_type(name)[0] or "application/octet-stream"


def docs_router(public: bool) -> APIRouter:
    """``/openapi.json``, ``/docs`` and its assets under ``/docs/assets/``, behind auth unless ``public``."""
    docs = APIRouter(include_in_schema=False)
    deps = [] if public else [Depends(require("detector"))]

    @docs.get("/docs/assets/{name}", dependencies=deps)
    async def docs_asset(name: str) -> Response:
        found = _asset(name) if name in DOCS_ASSETS else None
        if found is None:
            raise APIError(404, "not_found", f"no docs asset {name!r}")
        body, media = found
        return Response(body, media_type=media, headers={"Cache-Control": "private, max-age=86400"})

    @docs.get("/openapi.json", dependencies=deps)
    async def openapi(request: Request) -> Response:
        return json_response(request.app.openapi())

    @docs.get("/docs", dependencies=deps)
    async def swagger(request: Request) -> HTMLResponse:
        if _asset(DOCS_ASSETS[0]) is None:
            raise APIError(503, "docs_unavailable", "the swagger-ui-bundle-v2 package is not installed")
        return get_swagger_ui_html(openapi_url="/openapi.json", title="AIMDS API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")

    return docs
