"""Every signature rule's own examples: ``match`` must fire it, ``no_match`` must not (test id = rule id)."""

from __future__ import annotations

import pytest

from aimds.detect.signatures import RuleSet, load_rules
from aimds.normalize import normalize

RULES = load_rules()
RULESET = RuleSet(RULES)
INDEX = {r.id: i for i, r in enumerate(RULES)}


def fired(rule_id: str, text: str) -> bool:
    """Whether ``rule_id`` matches any view the normaliser builds for ``text``."""
    views = normalize(text)
    i = INDEX[rule_id]
    return any(i in RULESET.matching(v.text) for v in views.views if v.name != "original")


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_examples(rule) -> None:
    assert rule.match, f"{rule.id} has no match examples"
    assert rule.no_match, f"{rule.id} has no no_match examples"
    for text in rule.match:
        assert fired(rule.id, text), f"{rule.id} should match: {text!r}"
    for text in rule.no_match:
        assert not fired(rule.id, text), f"{rule.id} should not match: {text!r}"
