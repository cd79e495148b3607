"""The load benchmark's baseline: a bare FastAPI app with one POST endpoint that parses a JSON body with pydantic.

Run by ``benchmarks/load.py`` as ``uvicorn bare_app:app --app-dir benchmarks``; it accepts the same bodies as
``POST /v1/detect`` and ``POST /v1/detect/batch`` so both servers are driven by the same wrk script.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field


class Item(BaseModel):
    """The same fields as the service's detect request."""

    model_config = ConfigDict(extra="forbid")

    text: str
    role: str = "user"
    direction: str = "input"
    session_id: str | None = Field(default=None, max_length=256)
    user_id: str | None = Field(default=None, max_length=256)
    tenant: str = Field(default="default", max_length=256)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Batch(BaseModel):
    """A list of items."""

    model_config = ConfigDict(extra="forbid")

    items: list[Item] = Field(min_length=1)


app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.post("/v1/detect")
async def detect(body: Item) -> dict[str, Any]:
    """Hello: echo the text's length."""
    return {"action": "allow", "chars": len(body.text)}


@app.post("/v1/detect/batch")
async def detect_batch(body: Batch) -> dict[str, Any]:
    """Hello for a batch."""
    return {"items": [{"action": "allow", "chars": len(i.text)} for i in body.items]}
