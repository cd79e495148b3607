"""One error shape for every failure: ``{"error": {"code", "message"}}`` with the right HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from aimds.errors import AIMDSError, ConfigError, InputError, InputTooLargeError

log = logging.getLogger("aimds.server")


class APIError(Exception):
    """An error the API reports to the client as is."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The JSON error body with ``status``."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
                 422: "invalid_request", 429: "rate_limited", 503: "unavailable"}


def install_error_handlers(app: FastAPI) -> None:
    """Map every exception to the error shape."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            detail = first.get("ctx", {}).get("error", "")
            return error_response(422, "invalid_request", f"body: not valid JSON ({detail})" if detail
                                  else "body: not valid JSON")
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        msg = first.get("msg", "invalid request")
        return error_response(422, "invalid_request", f"{loc}: {msg}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(InputTooLargeError)
    async def _too_large(_: Request, exc: InputTooLargeError) -> Response:
        return error_response(413, "text_too_large", str(exc))

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> Response:
        return error_response(422, "invalid_input", str(exc))

    @app.exception_handler(ConfigError)
    async def _config(_: Request, exc: ConfigError) -> Response:
        return error_response(422, "invalid_config", str(exc))

    @app.exception_handler(AIMDSError)
    async def _aimds(_: Request, exc: AIMDSError) -> Response:
        log.error("request failed: %s", exc)
        return error_response(503, "unavailable", str(exc))

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal", "internal error")
