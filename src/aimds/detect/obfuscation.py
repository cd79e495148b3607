"""Tier 1 obfuscation detector: turns normalisation signals into ``obfuscation`` findings."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, ClassVar

import yaml

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.evidence import excerpt
from aimds.normalize.views import Signal, Views
from aimds.types import Category, Finding, Span


@cache
def signal_table() -> dict[str, Any]:
    """The signal → score table from ``data/obfuscation_signals.yaml``."""
    return yaml.safe_load(resources.files("aimds").joinpath("data/obfuscation_signals.yaml").read_text("utf-8"))


def _kind(signal: Signal) -> str:
    return signal.kind.split(":", 1)[0]


@register
class ObfuscationDetector(Detector):
    """Reports invisible characters, tag-character smuggling, homoglyphs and hidden encodings."""

    name: ClassVar[str] = "obfuscation"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (Category.OBFUSCATION,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025", "atlas:AML.T0068")
    cost: ClassVar[int] = 1

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """One finding per signal kind whose count reaches the table's ``min_count``."""
        table = signal_table()["signals"]
        out: list[Finding] = []
        for sig in views.signals:
            spec = table.get(_kind(sig))
            if spec is None or sig.count < spec["min_count"] or spec["score"] <= 0:
                continue
            if _kind(sig) == "tag_chars" and _is_flag_emoji(views.original, sig):
                continue
            detail = f": {excerpt(sig.detail, 0, len(sig.detail), 60)}" if sig.detail else ""
            strong = "strong_count" in spec and sig.count >= spec["strong_count"]
            out.append(Finding(
                detector=self.name,
                rule_id=f"signal:{sig.kind}",
                category=Category.OBFUSCATION,
                score=float(spec["strong_score"] if strong else spec["score"]),
                severity=int(spec["severity"]),
                span=Span(sig.start, sig.end),
                evidence=f"{sig.count} × {sig.kind}{detail}",
                explanation=spec["why"],
                tags=("atlas:AML.T0068",),
            ))
        return out


def _is_flag_emoji(text: str, sig: Signal) -> bool:
    """Tag characters that only spell a subdivision flag (🏴 + tags + cancel tag) are benign."""
    return sig.start > 0 and text[sig.start - 1] == "\U0001F3F4" and sig.end - sig.start <= 8


def hidden_instruction_finding(f: Finding) -> Finding:
    """An ``obfuscation`` finding for a rule/model hit that was only visible after decoding."""
    spec = signal_table()["hidden_instruction"]
    return Finding(
        detector=f.detector,
        rule_id=f"hidden:{f.rule_id}",
        category=Category.OBFUSCATION,
        score=float(spec["score"]),
        severity=int(spec["severity"]),
        span=f.span,
        evidence=f.evidence,
        explanation=f"instruction hidden by obfuscation ({f.view})",
        view=f.view,
        tags=("atlas:AML.T0068",),
    )
