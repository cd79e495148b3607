"""Every PII/secret recogniser's own examples: ``match`` must find its entity, ``no_match`` must not."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimds.detect.entities import EntityEngine, default_engine, find_entities, load_recognizers
from aimds.errors import RuleError
from aimds.types import Category

RECS = load_recognizers()


@pytest.mark.parametrize("rec", RECS, ids=[r.id for r in RECS])
def test_recognizer_examples(rec) -> None:
    engine = EntityEngine([rec])
    assert rec.match and rec.no_match, f"{rec.id} needs match and no_match examples"
    for text in rec.match:
        found = [e for e in engine.find(text) if e.type == rec.entity]
        assert found, f"{rec.id} should find {rec.entity} in {text!r}"
    for text in rec.no_match:
        found = [e for e in engine.find(text) if e.type == rec.entity]
        assert not found, f"{rec.id} should not find {rec.entity} in {text!r}: {found}"


def test_ids_and_categories() -> None:
    ids = [r.id for r in RECS]
    assert len(ids) == len(set(ids))
    assert {r.category for r in RECS} == {Category.PII, Category.SECRET}
    for r in RECS:
        assert r.id.split(".")[1] == r.entity
        assert 1 <= r.severity <= 10


def test_full_engine_finds_every_match_example() -> None:
    """With all recognisers competing, each match example still yields its entity type."""
    for rec in RECS:
        for text in rec.match:
            assert rec.entity in {e.type for e in find_entities(text)}, (rec.id, text)


def test_spans_point_into_text() -> None:
    text = "Mél : zoë.müller@exämple-mail.de, carte 4539 9458 0730 2151 — merci"
    ents = find_entities(text)
    by_type = {e.type: text[e.start:e.end] for e in ents}
    assert by_type["credit_card"] == "4539 9458 0730 2151"
    assert by_type.get("email", "").endswith("@exämple-mail.de") or "email" not in by_type


def test_example_values_need_low_threshold() -> None:
    text = "Use the test card 4242 4242 4242 4242 or write to user@example.com"
    assert find_entities(text) == []
    low = find_entities(text, min_score=0.0)
    assert {e.type for e in low} == {"credit_card", "email"}
    assert all(e.example for e in low)


def test_specific_key_wins_over_generic() -> None:
    text = "api_key = 'sk-proj-dIEsgo5nVjzz8Gwb8ewCISuYCl0Xq56zaWR7PAmpBFXlNPHcSke4R1J_dBi2ewQr'"
    ents = find_entities(text)
    assert [e.type for e in ents] == ["openai_key"]


def test_categories_filter() -> None:
    text = "mail bob.k@proton.me key ghp_DZFlRJmCGmUXiAPyhzAnar3ZLt4bnlz2MPKg"
    assert {e.type for e in find_entities(text, categories=[Category.PII])} == {"email"}
    assert {e.type for e in find_entities(text, categories=[Category.SECRET])} == {"github_token"}


def test_bad_recognizer_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("category: pii\nrecognizers:\n  - {id: pii.x, entity: x, title: t, pattern: '(?<=a)b',"
                   " score: 0.5, severity: 1, match: [], no_match: []}\n")
    with pytest.raises(RuleError):
        load_recognizers([bad])
    bad.write_text("category: pii\nrecognizers:\n  - {id: pii.x, entity: x, title: t, pattern: 'a',"
                   " validator: nope, score: 0.5, severity: 1, match: [], no_match: []}\n")
    with pytest.raises(RuleError):
        load_recognizers([bad])


def test_engine_is_shared() -> None:
    assert default_engine() is default_engine()


def test_detectors_report_findings_without_the_value() -> None:
    from aimds.detect.base import ScanContext, get_detector
    from aimds.normalize import normalize
    from aimds.types import ScanRequest

    text = "card 4539 9458 0730 2151, key ghp_DZFlRJmCGmUXiAPyhzAnar3ZLt4bnlz2MPKg, mail bob.k@proton.me"
    out = {}
    for name in ("pii", "secrets"):
        det = get_detector(name)()
        det.load()
        out[name] = det.scan(normalize(text), ScanContext(ScanRequest(text=text)))
    assert {f.rule_id for f in out["pii"]} == {"pii.credit_card", "pii.email"}
    assert [f.rule_id for f in out["secrets"]] == ["secret.github_token"]
    for f in out["pii"] + out["secrets"]:
        assert text[f.span.start:f.span.end] not in f.evidence
        assert "bob.k" not in f.evidence and "DZFl" not in f.evidence
    card = next(f for f in out["pii"] if f.rule_id == "pii.credit_card")
    assert card.evidence == "credit card ****2151" and card.severity == 8 and card.category is Category.PII
