"""Test doubles shipped in the box: detectors with fixed behaviour for pipeline, CLI and server tests."""

from __future__ import annotations

from typing import ClassVar

from aimds.detect.base import Detector, ScanContext, register
from aimds.errors import DetectorError
from aimds.normalize.views import Views
from aimds.types import Category, Finding, Span


@register
class AlwaysFlag(Detector):
    """Flags every text as a prompt injection with score ``options['score']`` (default 1.0)."""

    name: ClassVar[str] = "always_flag"
    categories: ClassVar[tuple[Category, ...]] = (Category.PROMPT_INJECTION,)
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025",)
    cost: ClassVar[int] = 0

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """A single finding over the whole text."""
        return [Finding(self.name, "always", Category.PROMPT_INJECTION, float(self.options.get("score", 1.0)),
                        8, Span(0, len(views.original)), "", "test double: flags everything")]


@register
class NeverFlag(Detector):
    """Never finds anything."""

    name: ClassVar[str] = "never_flag"
    categories: ClassVar[tuple[Category, ...]] = ()
    tags: ClassVar[tuple[str, ...]] = ()
    cost: ClassVar[int] = 0

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """No findings."""
        return []


@register
class AlwaysFail(Detector):
    """Raises on every scan (to test fail-closed handling)."""

    name: ClassVar[str] = "always_fail"
    categories: ClassVar[tuple[Category, ...]] = ()
    tags: ClassVar[tuple[str, ...]] = ()
    cost: ClassVar[int] = 0

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """Always raises :class:`DetectorError`."""
        raise DetectorError("test double: always fails")
