"""The AIMDS data model: requests, findings, verdicts and the category vocabulary.

Every record is a frozen dataclass; scores are always in [0, 1] and spans always point into the
*original* text of the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml


class Category(StrEnum):
    """One threat vocabulary used by the API, metrics, datasets and reports."""

    PROMPT_INJECTION = "prompt_injection"
    INDIRECT_INJECTION = "indirect_injection"
    JAILBREAK = "jailbreak"
    PROMPT_LEAK = "prompt_leak"
    OBFUSCATION = "obfuscation"
    PII = "pii"
    SECRET = "secret"
    TOOL_MISUSE = "tool_misuse"
    POLICY_VIOLATION = "policy_violation"
    ANOMALY = "anomaly"


class Role(StrEnum):
    """Who wrote the text being scanned."""

    USER = "user"
    SYSTEM = "system"
    ASSISTANT = "assistant"
    TOOL = "tool"
    DOCUMENT = "document"


class Direction(StrEnum):
    """Whether the text goes into the model (input) or comes out of it (output)."""

    INPUT = "input"
    OUTPUT = "output"


class Action(StrEnum):
    """What the caller should do with the text, in increasing order of severity."""

    ALLOW = "allow"
    MONITOR = "monitor"
    SANITIZE = "sanitize"
    REDACT = "redact"
    CHALLENGE = "challenge"
    ESCALATE = "escalate"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        """Position in the severity order (allow = 0)."""
        return list(Action).index(self)


@dataclass(frozen=True, slots=True)
class CategoryInfo:
    """Standards mapping of one category."""

    category: Category
    description: str
    owasp: tuple[str, ...]
    atlas: tuple[str, ...]


@cache
def taxonomy() -> Mapping[Category, CategoryInfo]:
    """The category → OWASP LLM Top 10 / MITRE ATLAS mapping from ``data/taxonomy.yaml``."""
    raw = yaml.safe_load(resources.files("aimds").joinpath("data/taxonomy.yaml").read_text("utf-8"))
    out = {}
    for name, info in raw["categories"].items():
        cat = Category(name)
        out[cat] = CategoryInfo(cat, info["description"], tuple(info["owasp"]), tuple(info["atlas"]))
    return MappingProxyType(out)


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range ``[start, end)`` in the original text."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start < 0 or self.end < self.start:
            raise ValueError(f"invalid span [{self.start}, {self.end})")


_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """One piece of text to scan, with who wrote it and where it is going."""

    text: str
    role: Role = Role.USER
    direction: Direction = Direction.INPUT
    session_id: str | None = None
    user_id: str | None = None
    tenant: str = "default"
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"text must be str, not {type(self.text).__name__}")
        object.__setattr__(self, "role", Role(self.role))
        object.__setattr__(self, "direction", Direction(self.direction))


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence from one detector: what, where, how sure and why."""

    detector: str
    rule_id: str
    category: Category
    score: float
    severity: int
    span: Span | None = None
    evidence: str = ""
    explanation: str = ""
    view: str = "original"
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if type(self.category) is not Category:
            object.__setattr__(self, "category", Category(self.category))
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")
        if not 0 <= self.severity <= 10:
            raise ValueError(f"severity must be in 0..10, got {self.severity}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "detector": self.detector,
            "rule_id": self.rule_id,
            "category": str(self.category),
            "score": round(self.score, 4),
            "severity": self.severity,
            "span": None if self.span is None else [self.span.start, self.span.end],
            "evidence": self.evidence,
            "explanation": self.explanation,
            "view": self.view,
            "tags": list(self.tags),
        }


@dataclass(frozen=True, slots=True)
class TierError:
    """A detector that failed or ran out of time; the verdict carries it instead of failing open."""

    tier: int
    detector: str
    kind: str  # "error" | "timeout" | "unavailable"
    message: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"tier": self.tier, "detector": self.detector, "kind": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one scan."""

    action: Action
    risk: float
    categories: tuple[Category, ...]
    findings: tuple[Finding, ...]
    latency_us: Mapping[str, float]
    errors: tuple[TierError, ...] = ()
    sanitized_text: str | None = None
    policy: str = "default"
    versions: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    notes: tuple[str, ...] = ()   # e.g. decoding bounds hit, detectors past their time budget
    #: What the threat detectors alone call for; ``action`` may be higher because of PII or secrets.
    threat_action: Action | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))
        if not 0.0 <= self.risk <= 1.0:
            raise ValueError(f"risk must be in [0, 1], got {self.risk}")

    @property
    def flagged(self) -> bool:
        """True when the text was judged manipulative: the threat action is anything but ``allow``.

        A verdict that only redacts personal data or secrets is not flagged (its ``action`` is still
        ``redact``).
        """
        return (self.threat_action if self.threat_action is not None else self.action) is not Action.ALLOW

    @property
    def blocked(self) -> bool:
        """True when the action is ``block``."""
        return self.action is Action.BLOCK

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "action": str(self.action),
            "risk": round(self.risk, 4),
            "categories": [str(c) for c in self.categories],
            "findings": [f.to_dict() for f in self.findings],
            "latency_us": {k: round(v, 1) for k, v in self.latency_us.items()},
            "errors": [e.to_dict() for e in self.errors],
            "sanitized_text": self.sanitized_text,
            "policy": self.policy,
            "versions": dict(self.versions),
            "notes": list(self.notes),
            "threat_action": str(self.threat_action) if self.threat_action is not None else str(self.action),
        }
