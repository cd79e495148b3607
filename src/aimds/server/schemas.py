"""Request and response bodies of the REST API (pydantic models; they also document the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aimds.types import Direction, Role, ScanRequest

RoleName = Literal["user", "system", "assistant", "tool", "document"]
DirectionName = Literal["input", "output"]


class DetectRequest(BaseModel):
    """One text to scan."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The text to scan.")
    role: RoleName = "user"
    direction: DirectionName = "input"
    session_id: str | None = Field(default=None, max_length=256)
    user_id: str | None = Field(default=None, max_length=256)
    tenant: str = Field(default="default", max_length=256)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_scan_request(self) -> ScanRequest:
        """The library's request object."""
        return ScanRequest(text=self.text, role=Role(self.role), direction=Direction(self.direction),
                           session_id=self.session_id, user_id=self.user_id, tenant=self.tenant,
                           metadata=self.metadata)


class BatchRequest(BaseModel):
    """Up to ``max_batch`` texts in one call."""

    model_config = ConfigDict(extra="forbid")

    items: list[DetectRequest] = Field(min_length=1)


class MitigateRequest(BaseModel):
    """A text and the mitigation to apply."""

    model_config = ConfigDict(extra="forbid")

    text: str
    action: Literal["sanitize", "block", "spotlight"] = "sanitize"
    role: RoleName = "document"
    source: str = Field(default="untrusted", max_length=64, pattern=r"^[A-Za-z0-9 _.-]+$")


class KeyRequest(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["detector", "analyst", "admin"]
    name: str = Field(default="", max_length=128)


class Finding(BaseModel):
    """One piece of evidence."""

    detector: str
    rule_id: str
    category: str
    score: float
    severity: int
    span: list[int] | None
    evidence: str
    explanation: str
    view: str


class VerdictBody(BaseModel):
    """A verdict as the API returns it."""

    event_id: str | None = None
    action: str
    risk: float
    categories: list[str]
    findings: list[Finding]
    latency_us: dict[str, float]
    errors: list[dict[str, Any]]
    sanitized_text: str | None
    policy: str
    versions: dict[str, str]
    notes: list[str]
    threat_action: str


class BatchResponse(BaseModel):
    """Verdicts in the order of the request's items."""

    items: list[VerdictBody]


class MitigateResponse(BaseModel):
    """The mitigated text."""

    action: str
    text: str | None
    refusal: str | None = None
    instruction: str | None = None
    verdict: VerdictBody | None = None


class ErrorBody(BaseModel):
    """``{"error": {"code", "message"}}``."""

    error: dict[str, str]


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 413, 422, 429, 503)
}
