"""Fast JSON responses (orjson) that never fail on odd strings."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def _scrub(obj: Any) -> Any:
    if isinstance(obj, str):
        return obj.encode("utf-8", "replace").decode("utf-8")
    if isinstance(obj, dict):
        return {_scrub(k): _scrub(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_scrub(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """orjson bytes; strings with lone surrogates are repaired instead of failing."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return orjson.dumps(_scrub(obj))


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(dumps(obj), status_code=status, media_type="application/json", headers=headers)
