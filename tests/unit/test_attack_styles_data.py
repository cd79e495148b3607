"""Shape of the held-out attack-styles probe (``benchmarks/data/attack_styles.jsonl``).

The probe only measures (``benchmarks/benign_requests.py --data``); these tests check the file, never the
detector on it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "attack_styles.jsonl"
STYLES = (
    "secret_game", "say_phrase", "refusal_suppression", "prefix_injection", "policy_puppetry",
    "behaviour_update", "emotional", "virtualisation", "authority", "fake_dialogue", "code_smuggling",
    "split_payload", "web_indirect", "exfil_markdown", "agent_tool", "leak_format", "fiction_harm",
    "multilingual_other", "context_reset", "persona_jailbreak",
)
ATTACK_CATEGORIES = {"prompt_injection", "indirect_injection", "jailbreak", "prompt_leak", "obfuscation",
                     "tool_misuse"}
KEYS = {"id", "label", "text", "category", "style", "lang"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    """Every row of the probe, parsed; a blank or non-JSON line fails here."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    assert all(line.strip() for line in lines), "blank line in the probe"
    return [json.loads(line) for line in lines]


def test_rows_have_exactly_the_expected_fields(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        assert set(r) == KEYS, r.get("id")
        assert isinstance(r["text"], str) and r["text"].strip(), r["id"]
        assert r["label"] in (0, 1) and not isinstance(r["label"], bool), r["id"]


def test_each_style_has_eight_attacks_and_five_benign(rows: list[dict[str, Any]]) -> None:
    counts = Counter((r["style"], r["label"]) for r in rows)
    assert {s for s, _ in counts} == set(STYLES)
    for style in STYLES:
        assert counts[(style, 1)] == 8, style
        assert counts[(style, 0)] == 5, style
    assert len(rows) == 260


def test_ids_are_unique_and_follow_style_and_label(rows: list[dict[str, Any]]) -> None:
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    for r in rows:
        prefix = f"as-{r['style']}-{'a' if r['label'] == 1 else 'b'}"
        number = r["id"].removeprefix(prefix)
        assert r["id"].startswith(prefix) and len(number) == 2 and number.isdigit(), r["id"]
        assert 1 <= int(number) <= (8 if r["label"] == 1 else 5), r["id"]


def test_categories_match_labels(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["label"] == 1:
            assert r["category"] in ATTACK_CATEGORIES, r["id"]
        else:
            assert r["category"] == "benign_hard", r["id"]


def test_languages_are_two_letter_codes(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        lang = r["lang"]
        assert len(lang) == 2 and lang.isascii() and lang.isalpha() and lang.islower(), r["id"]
    multilingual = {r["lang"] for r in rows if r["style"] == "multilingual_other"}
    assert "en" not in multilingual and len(multilingual) >= 8


def test_no_duplicate_texts(rows: list[dict[str, Any]]) -> None:
    norm = Counter(" ".join(r["text"].casefold().split()) for r in rows)
    assert [t for t, n in norm.items() if n > 1] == []


def test_lengths_vary_within_bounds(rows: list[dict[str, Any]]) -> None:
    lengths = [len(r["text"]) for r in rows]
    assert max(lengths) <= 1600
    assert min(lengths) >= 20
    assert sum(n > 800 for n in lengths) >= 3 and sum(n < 120 for n in lengths) >= 20
