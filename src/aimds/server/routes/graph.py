"""The causal attack graph (analyst role): chains, related attacks, top sources, export."""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from aimds.server.deps import AnalystKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import json_response
from aimds.server.schemas import ERRORS

router = APIRouter(tags=["graph"])
_REF = Annotated[str, "an event, violation, session, user or key id, or a node id"]


def _resolve(request: Request, ref: str) -> str:
    node = service(request).graph.resolve(ref)
    if node is None:
        raise APIError(404, "not_found", f"no graph node for {ref!r}")
    return node


@router.get("/v1/graph/chain/{ref}", responses={**ERRORS, 404: ERRORS[401]})
async def chain(ref: _REF, request: Request, principal: AnalystKey,
                max_depth: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    """What led to a detection or violation: its ancestors over causal edges, oldest first."""
    graph = service(request).graph
    node = await asyncio.to_thread(_resolve, request, ref)
    sub = await asyncio.to_thread(graph.chain, node, max_depth=max_depth)
    return json_response(sub.to_dict())


@router.get("/v1/graph/related/{ref}", responses={**ERRORS, 404: ERRORS[401]})
async def related(ref: _REF, request: Request, principal: AnalystKey,
                  hops: Annotated[int, Query(ge=0, le=6)] = 2,
                  hours: Annotated[float, Query(gt=0, le=24 * 365)] = 24.0,
                  limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> Response:
    """Nodes within ``hops`` edges and ``hours`` of the given one."""
    graph = service(request).graph
    node = await asyncio.to_thread(_resolve, request, ref)
    sub = await asyncio.to_thread(graph.related, node, hops=hops, hours=hours, limit=limit)
    return json_response(sub.to_dict())


@router.get("/v1/graph/sources", responses=ERRORS)
async def sources(request: Request, principal: AnalystKey,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 10,
                  hours: Annotated[float | None, Query(gt=0, le=24 * 365)] = None) -> Response:
    """The most active attack sources (users and API keys) by flagged inputs."""
    rows = await asyncio.to_thread(service(request).graph.sources, limit=limit, hours=hours)
    return json_response({"items": rows})


@router.get("/v1/graph/export", responses=ERRORS)
async def export(request: Request, principal: AnalystKey,
                 format: Literal["graphml", "cypher"] = "graphml") -> Response:
    """The whole graph as GraphML or as Cypher statements for Neo4j."""
    graph = service(request).graph

    def render() -> str:
        buf = io.StringIO()
        (graph.write_graphml if format == "graphml" else graph.write_cypher)(buf)
        return buf.getvalue()

    text = await asyncio.to_thread(render)
    media = "application/graphml+xml" if format == "graphml" else "text/plain; charset=utf-8"
    return Response(text, media_type=media)
