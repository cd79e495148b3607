"""Output scanning: ``/v1/detect/output``, streaming ``/v1/detect/output/stream`` and ``/v1/canary``."""

from __future__ import annotations

import codecs
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from aimds.detect.output import CanaryDetector, ExfilOutputDetector, PromptLeakOutputDetector
from aimds.detect.secrets import SecretsDetector
from aimds.detect.stream import StreamScanner
from aimds.respond import canary as canaries
from aimds.respond.policy import decide
from aimds.server.deps import DetectorKey, service
from aimds.server.errors import APIError
from aimds.server.jsonio import dumps, json_response
from aimds.server.schemas import ERRORS, VerdictBody
from aimds.types import Direction, Finding, Role, ScanRequest, Verdict

router = APIRouter(tags=["output"])
STREAM_TYPES = ("text/plain", "application/x-ndjson", "text/event-stream")
HEAD_CHARS = 240
STREAM_WINDOW = 1024


class OutputRequest(BaseModel):
    """A model's response, with what it answered and the system prompt it must not leak."""

    model_config = ConfigDict(extra="forbid")

    response: str
    prompt: str | None = None
    system_prompt: str | None = None
    session_id: str | None = Field(default=None, max_length=256)
    user_id: str | None = Field(default=None, max_length=256)
    tenant: str = Field(default="default", max_length=256)


def _output_request(body: OutputRequest) -> ScanRequest:
    meta: dict[str, Any] = {}
    if body.system_prompt:
        meta["system_prompt"] = body.system_prompt
    return ScanRequest(text=body.response, role=Role.ASSISTANT, direction=Direction.OUTPUT,
                       session_id=body.session_id, user_id=body.user_id, tenant=body.tenant, metadata=meta)


@router.post("/v1/detect/output", response_model=VerdictBody, responses=ERRORS)
async def detect_output(body: OutputRequest, request: Request, principal: DetectorKey) -> Response:
    """Scan a response: canary tokens, system-prompt leakage (verbatim, paraphrased, translated, encoded),
    PII and secrets, exfiltration beacons, and instructions aimed at a downstream tool."""
    svc = service(request)
    if body.system_prompt is not None:
        svc.check_size(body.system_prompt)
    req = _output_request(body)
    verdict = await svc.scan(req)
    stored = await svc.record([svc.event(req, verdict, principal, "/v1/detect/output")])
    return json_response({"event_id": stored[0]["id"], **verdict.to_dict()})


@router.post("/v1/canary", status_code=201, responses=ERRORS)
async def new_canary(request: Request, principal: DetectorKey) -> Response:
    """Issue a canary token to embed in a system prompt; it is a ``prompt_leak`` wherever it shows up later
    (any output, or a later input), also encoded. Tokens verify with the deployment key, no lookup."""
    svc = service(request)
    token = canaries.issue(svc.canary_key)
    svc.store.record_admin("canary_issued", principal.id, canary_id=token.id)
    return json_response({"token": token.token, "id": token.id}, status=201)


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


class _Chunks:
    """Turns the request body (plain text, NDJSON or SSE) into text chunks and a metadata dict."""

    def __init__(self, content_type: str) -> None:
        self.kind = content_type
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending = ""
        self.meta: dict[str, Any] = {}

    def push(self, raw: bytes, final: bool = False) -> list[str]:
        text = self.decoder.decode(raw, final)
        if self.kind == "text/plain":
            return [text] if text else []
        self.pending += text
        lines = self.pending.split("\n")
        self.pending = "" if final else lines.pop()
        out: list[str] = []
        for line in lines:
            line = line.rstrip("\r")
            if self.kind == "application/x-ndjson":
                if not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise APIError(422, "invalid_request", "each NDJSON line must be a JSON object") from None
                if not isinstance(obj, dict):
                    raise APIError(422, "invalid_request", "each NDJSON line must be a JSON object")
                if isinstance(obj.get("chunk"), str):
                    out.append(obj["chunk"])
                for key in ("system_prompt", "session_id"):
                    if isinstance(obj.get(key), str):
                        self.meta[key] = obj[key]
            elif line.startswith("data:"):
                data = line[5:].removeprefix(" ")
                if data == "[DONE]":
                    continue
                try:  # OpenAI-style JSON deltas, or a JSON string, or raw text
                    obj = orjson.loads(data)
                    if isinstance(obj, str):
                        data = obj
                    elif isinstance(obj, dict):
                        delta = (obj.get("choices") or [{}])[0].get("delta", {}).get("content") \
                            if isinstance(obj.get("choices"), list) else obj.get("chunk")
                        if isinstance(obj.get("system_prompt"), str):
                            self.meta["system_prompt"] = obj["system_prompt"]
                        data = delta if isinstance(delta, str) else ""
                except orjson.JSONDecodeError:
                    pass
                if data:
                    out.append(data)
        return out


@router.post("/v1/detect/output/stream", responses={**ERRORS, 200: {
    "content": {"text/event-stream": {}},
    "description": "`findings` events as leaks are seen, `abort` as soon as one crosses the block threshold, "
                   "then `done` with the event id"}})
async def detect_output_stream(request: Request, principal: DetectorKey) -> Response:
    """Scan a model's output while it streams, in sliding windows, without buffering it whole.

    Body: ``text/plain`` (raw chunks), ``application/x-ndjson`` (lines ``{"chunk": "..."}``, optionally a first
    line ``{"system_prompt": "...", "session_id": "..."}``) or ``text/event-stream`` (``data:`` lines: raw text,
    JSON strings or OpenAI-style ``choices[0].delta.content``). The answer is Server-Sent Events; ``abort`` is
    sent as soon as a leak is seen and the rest of the body is not read.
    """
    svc = service(request)
    ctype = request.headers.get("content-type", "text/plain").split(";")[0].strip().lower()
    if ctype not in STREAM_TYPES:
        raise APIError(415, "unsupported_media_type", f"send one of {', '.join(STREAM_TYPES)}")
    parser = _Chunks(ctype)

    async def events() -> AsyncIterator[bytes]:
        t0 = time.perf_counter()
        scanner: StreamScanner | None = None
        digest = hmac.new(svc.hash_key, digestmod=hashlib.sha256)
        head = ""
        findings: list[Finding] = []
        aborted = False
        try:
            async for raw in request.stream():
                chunks = parser.push(raw)
                for chunk in chunks:
                    if scanner is None:
                        scanner = _scanner(svc, parser.meta.get("system_prompt"))
                    digest.update(chunk.encode("utf-8", "replace"))
                    if len(head) < HEAD_CHARS:
                        head += chunk[: HEAD_CHARS - len(head)]
                    result = scanner.feed(chunk)
                    if result.findings:
                        findings += result.findings
                        yield _sse("findings", {"offset": result.offset,
                                                "findings": [f.to_dict() for f in result.findings]})
                    if result.abort:
                        aborted = True
                        yield _sse("abort", {"offset": result.offset, "reason": "leak",
                                             "categories": sorted({str(f.category) for f in findings})})
                        break
                if aborted:
                    break
            if not aborted:
                for chunk in parser.push(b"", final=True):
                    if scanner is None:
                        scanner = _scanner(svc, parser.meta.get("system_prompt"))
                    digest.update(chunk.encode("utf-8", "replace"))
                    findings += scanner.feed(chunk).findings
                if scanner is not None:
                    tail = scanner.close()
                    findings += tail.findings
                    if tail.findings:
                        yield _sse("findings", {"offset": tail.offset,
                                                "findings": [f.to_dict() for f in tail.findings]})
                    aborted = tail.abort
            decision = decide(findings, Role.ASSISTANT, svc.guard.policy)
            verdict = Verdict(decision.action, decision.risk, decision.categories, tuple(findings),
                              {"stream": (time.perf_counter() - t0) * 1e6}, policy=svc.guard.policy.name,
                              threat_action=decision.threat_action)
            req = ScanRequest(text=head, role=Role.ASSISTANT, direction=Direction.OUTPUT,
                              session_id=parser.meta.get("session_id"))
            event = svc.event(req, verdict, principal, "/v1/detect/output/stream")
            event.update({"input_hmac": digest.hexdigest(), "chars": scanner.offset if scanner else 0,
                          "aborted": aborted})
            stored = await svc.record([event])
            yield _sse("done", {"event_id": stored[0]["id"], "aborted": aborted, **verdict.to_dict()})
        except APIError as exc:
            yield _sse("error", {"error": {"code": exc.code, "message": exc.message}})

    return _DuplexSSE(events())


class _DuplexSSE(Response):
    """An SSE response that is written while the request body is still being read.

    Starlette's StreamingResponse (on ASGI < 2.4) listens for a disconnect by calling ``receive()``
    concurrently, which would steal request-body messages from the generator that reads them.
    """

    media_type = "text/event-stream"

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        super().__init__(None, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.body_iterator = body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _scanner(svc: Any, system_prompt: str | None) -> StreamScanner:
    detectors = [CanaryDetector(key=svc.canary_key), PromptLeakOutputDetector(), ExfilOutputDetector(),
                 SecretsDetector()]
    # 1,024-character windows: encoded leaks are seen sooner than at 2,048, and no chunk pays for much text at once
    # (the output detectors only: the scanner's light windows; `benchmarks/output_eval.py --window 1024`)
    return StreamScanner(detectors, system_prompt=system_prompt, window=STREAM_WINDOW)
