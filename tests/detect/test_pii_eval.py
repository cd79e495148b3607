"""Behaviour of the shipped PII/secret recognisers on the held-out labelled set (generator seed 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import load_file_module

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "pii_labelled.jsonl"


@pytest.fixture(scope="module")
def result() -> dict:
    bench = load_file_module("benchmarks/pii_eval.py", "pii_eval")
    return bench.evaluate(bench.load_rows(DATA))


def test_set_shape() -> None:
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines()]
    assert len(rows) >= 600 and DATA.stat().st_size < 1_000_000
    assert sum(1 for r in rows if not r["entities"]) >= 200   # near-misses
    for r in rows:
        for e in r["entities"]:
            assert 0 <= e["start"] < e["end"] <= len(r["text"])


def test_set_is_what_the_generator_writes() -> None:
    gen = load_file_module("scripts/gen_pii_set.py", "gen_pii_set")
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines()]
    assert rows == gen.generate(2)


def test_overall_precision_and_recall(result: dict) -> None:
    o = result["overall"]
    assert o["precision"] >= 0.95, result["false_alarms"][:10]
    assert o["recall"] >= 0.95, result["misses"][:10]


def test_every_type_is_covered_and_recalled(result: dict) -> None:
    from aimds.detect.entities import load_recognizers

    entity_types = {r.entity for r in load_recognizers()}
    assert entity_types <= set(result["per_type"]), entity_types - set(result["per_type"])
    for typ, m in result["per_type"].items():
        assert m["gold"] >= 15, typ
        assert m["recall"] >= 0.85 and m["precision"] >= 0.85, (typ, m)
