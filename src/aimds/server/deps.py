"""Request dependencies: the service object and role-checked, rate-limited principals."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from aimds.server.auth import Principal
from aimds.server.errors import APIError
from aimds.server.service import Service

_bearer = HTTPBearer(auto_error=False, description="An AIMDS API key or a JWT.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An AIMDS API key.")


def service(request: Request) -> Service:
    """The per-process :class:`Service`."""
    return request.app.state.service  # type: ignore[no-any-return]


def require(role: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that authenticates, checks ``role`` and applies the rate limit."""

    async def dependency(request: Request,
                         bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                         api_key: Annotated[str | None, Depends(_api_key)]) -> Principal:
        svc = service(request)
        authorization = request.headers.get("authorization")
        principal = svc.auth.authenticate(authorization if authorization else None, api_key)
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
