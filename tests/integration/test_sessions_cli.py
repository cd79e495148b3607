"""``aimds eval --sessions`` on the shipped held-out multi-turn set."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from aimds.cli import main

EVAL = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "sessions_eval.jsonl"


def test_eval_sessions_reports_both_modes(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["eval", "--sessions", str(EVAL), "--limit", "8", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key in ("tpr", "fpr", "precision", "f1", "balanced_accuracy"):
        assert key in report["overall"] and key in report["single_message"]["overall"]
    assert "with session analysis" in result.output


def test_eval_needs_exactly_one_input() -> None:
    result = CliRunner().invoke(main, ["eval"])
    assert result.exit_code == 2 and "exactly one" in result.output


def test_eval_sessions_rejects_rows_without_turns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "label": 0}\n')
    result = CliRunner().invoke(main, ["eval", "--sessions", str(bad)])
    assert result.exit_code == 2 and "turns" in result.output
