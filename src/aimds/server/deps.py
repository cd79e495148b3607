"""Request dependencies: the service object and role-checked, rate-limited principals."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from aimds.server.auth import Principal
from aimds.server.errors import APIError
from aimds.server.service import Service

#: Declared in the OpenAPI document by :func:`aimds.server.app.create_app` (checked here, in one step).
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An AIMDS API key or a JWT."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "An AIMDS API key."},
}


def service(request: Request) -> Service:
    """The per-process :class:`Service`."""
    return request.app.state.service  # type: ignore[no-any-return]


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates, checks ``role`` and applies the rate limit."""

    async def dependency(request: Request) -> Principal:
        svc = service(request)
        headers = request.headers
        principal = svc.auth.authenticate(headers.get("authorization") or None, headers.get("x-api-key"))
        if not principal.allows(role):
            raise APIError(403, "forbidden", f"this route needs the {role!r} role; the key has {principal.role!r}")
        wait = svc.limiter.take(principal.id)
        if wait > 0:
            svc.metrics.rate_limited.inc()
            raise APIError(429, "rate_limited", "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})
        request.state.principal = principal
        return principal

    return dependency


#: Route parameters that authenticate and require a role.
DetectorKey = Annotated[Principal, Depends(require("detector"))]
AnalystKey = Annotated[Principal, Depends(require("analyst"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
