"""Tier 1 PII detector: validated personal data (cards, IBANs, national ids, e-mail, phone, IP).

``find_entities`` (re-exported from :mod:`aimds.detect.entities`) is the plain function that
redaction and output scanning use; the detector wraps it into findings.
"""

from __future__ import annotations

from typing import ClassVar

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.entities import DEFAULT_MIN_SCORE, Entity, EntityEngine, default_engine, find_entities
from aimds.normalize.views import Views
from aimds.types import Category, Finding, Span

__all__ = ["EntityDetector", "PiiDetector", "evidence_for", "find_entities"]

#: Entities whose last four characters are commonly shown (receipts, bank statements).
_SHOW_LAST4 = frozenset({"credit_card", "iban"})


def evidence_for(entity: Entity, text: str) -> str:
    """A redacted description of ``entity``: its type and, for cards and IBANs, the last four characters."""
    label = entity.type.replace("_", " ")
    value = text[entity.start:entity.end]
    if entity.type in _SHOW_LAST4:
        tail = "".join(c for c in value if c.isalnum())[-4:]
        return f"{label} ****{tail}"
    return f"{label} ({len(value)} chars)"


class EntityDetector(Detector):
    """Shared scan logic of the PII and secrets detectors (not registered itself).

    Options: ``min_score`` (default 0.5), ``max_findings`` (default 100).
    """

    category: ClassVar[Category]

    def load(self) -> None:
        """Compile the shipped recognisers (shared between both detectors)."""
        if self.loaded:
            return
        self.engine: EntityEngine = default_engine()
        super().load()

    def version(self) -> str:
        """Number of recognisers of this detector's category."""
        n = sum(1 for r in self.engine.recognizers if r.category is self.category)
        return f"{n} recognizers"

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """One finding per entity found in the original text."""
        text = views.original
        min_score = float(self.options.get("min_score", DEFAULT_MIN_SCORE))
        limit = int(self.options.get("max_findings", 100))
        out = []
        for ent in self.engine.find(text, min_score, categories=(self.category,))[:limit]:
            rec = self.engine.by_id[ent.rule]
            how = "" if rec.validator == "always" else f", {rec.validator} check passed"
            out.append(Finding(
                detector=self.name,
                rule_id=ent.id,
                category=self.category,
                score=ent.score,
                severity=rec.severity,
                span=Span(ent.start, ent.end),
                evidence=evidence_for(ent, text),
                explanation=f"{rec.title} (recognizer {rec.id}{how})",
                tags=self.tags,
            ))
        return out


@register
class PiiDetector(EntityDetector):
    """Finds personal data: payment cards (Luhn + IIN), IBANs (mod 97), national ids with checksums, e-mail, phone, IP.

    Candidates come from ``data/pii/recognizers.yaml``; validators drop invalid ones, context
    words raise the score, documented example values are not reported.
    """

    name: ClassVar[str] = "pii"
    tier: ClassVar[int] = 1
    category: ClassVar[Category] = Category.PII
    categories: ClassVar[tuple[Category, ...]] = (Category.PII,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM02:2025", "atlas:AML.T0057")
    cost: ClassVar[int] = 60
