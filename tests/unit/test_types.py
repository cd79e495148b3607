"""The data model."""

from __future__ import annotations

import pytest

import aimds
from aimds.types import Action, Category, Finding, ScanRequest, Span, Verdict, taxonomy


def test_all_is_complete_and_sorted() -> None:
    assert aimds.__all__ == sorted(aimds.__all__)
    for name in aimds.__all__:
        assert hasattr(aimds, name)


def test_every_category_is_mapped_to_owasp() -> None:
    tax = taxonomy()
    assert set(tax) == set(Category)
    for info in tax.values():
        assert info.owasp and all(o.startswith("LLM") for o in info.owasp)


@pytest.mark.parametrize("score", [-0.1, 1.5])
def test_finding_score_bounds(score: float) -> None:
    with pytest.raises(ValueError):
        Finding("d", "r", Category.JAILBREAK, score, 5)


def test_finding_severity_bounds() -> None:
    with pytest.raises(ValueError):
        Finding("d", "r", Category.JAILBREAK, 0.5, 11)


def test_span_validation() -> None:
    with pytest.raises(ValueError):
        Span(5, 2)


def test_request_coerces_enums_and_rejects_bytes() -> None:
    r = ScanRequest(text="x", role="tool", direction="output")
    assert r.role.value == "tool"
    with pytest.raises(ValueError):
        ScanRequest(text="x", role="robot")
    with pytest.raises(TypeError):
        ScanRequest(text=b"x")  # type: ignore[arg-type]


def test_action_order() -> None:
    assert Action.ALLOW.rank < Action.MONITOR.rank < Action.SANITIZE.rank < Action.BLOCK.rank


def test_verdict_to_dict_is_json_ready() -> None:
    import json

    v = Verdict(Action.BLOCK, 0.9, (Category.JAILBREAK,), (Finding("d", "r", Category.JAILBREAK, 0.9, 8, Span(0, 3)),),
                {"total": 12.0})
    d = json.loads(json.dumps(v.to_dict()))
    assert d["action"] == "block" and d["findings"][0]["span"] == [0, 3]
    assert v.flagged and v.blocked
