"""Tier 1 signature detector: one RE2 multi-pattern pass per normalised view."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from aimds.detect.base import Detector, ScanContext, register
from aimds.detect.evidence import excerpt
from aimds.detect.signatures import RuleSet, builtin_rule_files, load_rules
from aimds.normalize.views import Views
from aimds.types import Category, Finding, Span

# Views the rules run on; "original" is skipped because "folded" covers it.
RULE_VIEWS = ("folded", "deleet", "despaced", "decoded")


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def compiled_rules(files: tuple[tuple[str, int, int], ...], exclude: tuple[str, ...]) -> RuleSet:
    """The rules of ``files`` (path, mtime, size) without ``exclude``, compiled once per process.

    RE2 builds the automata's DFA states from the text it reads (up to 128 MB each, see
    :class:`RuleSet`): guards in one process that use the same rules — the service's and its agent-trace
    guard, or several ``Guard()`` in a library — share those states and their warm-up instead of building
    their own. A rule file changed on disk has a new stamp, so the next load compiles it afresh.
    """
    rules = load_rules([Path(f) for f, _, _ in files])
    drop = set(exclude)
    return RuleSet([r for r in rules if r.id not in drop])


@register
class SignatureDetector(Detector):
    """Matches the signature database (``data/signatures/*.yaml``) against every normalised view.

    Options: ``paths`` (list of rule files instead of the shipped ones), ``exclude`` (rule ids).
    """

    name: ClassVar[str] = "signatures"
    tier: ClassVar[int] = 1
    categories: ClassVar[tuple[Category, ...]] = (
        Category.PROMPT_INJECTION, Category.INDIRECT_INJECTION, Category.JAILBREAK,
        Category.PROMPT_LEAK, Category.OBFUSCATION, Category.TOOL_MISUSE,
    )
    tags: ClassVar[tuple[str, ...]] = ("owasp:LLM01:2025", "owasp:LLM07:2025", "atlas:AML.T0051")
    cost: ClassVar[int] = 20
    concurrent: ClassVar[bool] = True  # RE2 matches without the GIL

    def load(self) -> None:
        """Load and compile the rules (shared with every detector of this process that has the same ones)."""
        if self.loaded:
            return
        paths = self.options.get("paths")
        files = [Path(p) for p in paths] if paths else builtin_rule_files()
        self.ruleset = compiled_rules(tuple((str(f), *_stamp(f)) for f in files),
                                      tuple(sorted(set(self.options.get("exclude", ())))))
        super().load()

    def version(self) -> str:
        """Number of rules compiled (the rule files carry their own versions)."""
        return f"{len(self.ruleset)} rules"

    def scan(self, views: Views, context: ScanContext) -> list[Finding]:
        """One finding per rule that matches, at its first match in the most direct view."""
        findings: dict[str, Finding] = {}
        rules = self.ruleset.rules
        for view in views.views:
            if view.name not in RULE_VIEWS:
                continue
            data = view.text.encode("utf-8", "surrogatepass")
            hits = self.ruleset.matching(data)
            if not hits:
                continue
            # Multilingual rules accept English words too (mixed-language attacks); on an English
            # attack they would only repeat an English rule of the same category under a misleading
            # language tag, so they are skipped when one fired on this view.
            english = {rules[i].category for i in hits if rules[i].lang == "en"}
            hidden = view.name != "folded"
            where_from = f"the {view.name} view" + (f" (decoded from {view.source})" if view.source else "")
            view_name = view.name if not view.source else f"{view.name}:{view.source}"
            for idx in hits:
                rule = rules[idx]
                if rule.id in findings or (rule.lang != "en" and rule.category in english):
                    continue
                where = self.ruleset.span(idx, view.text, data) or (0, 0)
                start, end = view.to_original(*where)
                findings[rule.id] = Finding(
                    detector=self.name,
                    rule_id=rule.id,
                    category=rule.category,
                    score=rule.score,
                    severity=rule.severity,
                    span=Span(start, end),
                    evidence=excerpt(view.text, *where),
                    explanation=f"rule {rule.id} '{rule.title}' matched {where_from}",
                    view=view_name,
                    tags=rule.tags + (("technique:hidden_in_encoding",) if hidden else ()),
                )
        return list(findings.values())
