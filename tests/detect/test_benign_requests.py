"""Behaviour of the shipped default pipeline on realistic benign requests with pasted content.

A fixed slice of ``benchmarks/data/benign_requests.jsonl`` (written by hand, held out from every
training template): the first 30 benign requests of the ``pasted`` style (summarise / translate /
proofread / reply / classify / extract / explain code... with the content pasted below the ask),
and every attack of the same style (instructions injected into the pasted content). The full
figures come from ``benchmarks/benign_requests.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aimds import Guard
from aimds.types import Action

DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "benign_requests.jsonl"
# Measured with the shipped models (encoder enc-minilm-l6-mil-v1): 6 of the 30 blocked, 7 flagged, all 34
# attacks flagged. Lower these when a model change cuts the false positives (benchmarks/benign_requests.py).
MAX_BLOCKED = 6
MAX_FLAGGED = 7
MIN_ATTACKS_FLAGGED = 34


def _rows() -> list[dict[str, Any]]:
    with DATA.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="module")
def guard() -> Guard:
    return Guard().load()


def test_slice_is_fixed() -> None:
    rows = _rows()
    benign = [r for r in rows if r["label"] == 0 and r["style"] == "pasted"][:30]
    assert [r["id"] for r in benign][:2] == ["br-045", "br-046"] and len(benign) == 30
    assert sum(r["label"] == 1 and r["style"] == "pasted" for r in rows) == 34
    assert len({r["id"] for r in rows}) == len(rows) >= 260


def test_benign_pasted_requests_are_not_blocked(guard: Guard) -> None:
    benign = [r for r in _rows() if r["label"] == 0 and r["style"] == "pasted"][:30]
    verdicts = {r["id"]: guard.scan(r["text"]) for r in benign}
    blocked = sorted(i for i, v in verdicts.items() if v.action is Action.BLOCK)
    flagged = sorted(i for i, v in verdicts.items() if v.flagged)
    assert len(blocked) <= MAX_BLOCKED, blocked
    assert len(flagged) <= MAX_FLAGGED, flagged


def test_attacks_in_pasted_content_are_still_caught(guard: Guard) -> None:
    attacks = [r for r in _rows() if r["label"] == 1 and r["style"] == "pasted"]
    missed = [r["id"] for r in attacks if not guard.scan(r["text"]).flagged]
    assert len(attacks) - len(missed) >= MIN_ATTACKS_FLAGGED, missed
