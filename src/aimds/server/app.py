"""``create_app(settings)``: the FastAPI application, its middleware and its lifecycle."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from aimds import __version__
from aimds.pipeline import Guard
from aimds.server.deps import SECURITY_SCHEMES
from aimds.server.errors import install_error_handlers
from aimds.server.limits import BodyLimitMiddleware
from aimds.server.logs import configure_logging
from aimds.server.routes import admin, agent, detect, events, graph, memory, models, output, privacy, system
from aimds.server.service import Service
from aimds.server.settings import ServiceSettings
from aimds.store.sqlite import SQLiteStore

log = logging.getLogger("aimds.access")


class RequestMetricsMiddleware:
    """Counts requests and their latency by route template and status; writes the JSON access log."""

    def __init__(self, app: Any, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - t0
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            m = self.service.metrics
            m.requests.labels(route, scope["method"], str(status)).inc()
            m.request_seconds.labels(route).observe(elapsed)
            if self.service.settings.access_log:
                principal = getattr(scope.get("state", {}).get("principal"), "id", None)
                log.info("request", extra={"route": route, "method": scope["method"], "status": status,
                                           "ms": round(elapsed * 1000, 3), "key_id": principal})


def create_app(settings: ServiceSettings | None = None, *, guard: Guard | None = None,
               store: SQLiteStore | None = None) -> FastAPI:
    """Build the service. Settings default to ``ServiceSettings.from_env()``."""
    settings = settings or ServiceSettings.from_env()
    settings.validate()
    configure_logging(settings.log_level)
    svc = Service(settings, guard=guard, store=store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await svc.start()
        logging.getLogger("aimds.server").info("ready", extra={"data_dir": str(settings.data_dir),
                                                                "environment": settings.environment})
        try:
            yield
        finally:
            svc.close()

    app = FastAPI(title="AIMDS", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,
                  description="AI Manipulation Defense System: detect prompt injection, jailbreaks and manipulation.")
    app.state.service = svc
    install_error_handlers(app)
    for module in (system, detect, output, privacy, agent, events, graph, memory, models, admin):
        app.include_router(module.router)
    app.include_router(system.docs_router(settings.public_docs))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, service=svc)
    app.openapi = lambda: _openapi_with_security(app)  # type: ignore[method-assign]
    return app


def _openapi_with_security(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document with the API-key/JWT security schemes on every route but ``/healthz``."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, ops in schema.get("paths", {}).items():
            for op in ops.values():
                if path != "/healthz":
                    op["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = schema
    return app.openapi_schema


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from the environment."""
    return create_app(ServiceSettings.from_env())
