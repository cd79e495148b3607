"""``aimds policy`` (the click group, and ``python -m`` as a user would run it)."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from aimds.respond.policy import reference
from aimds.respond.policy.cli import policy

LINES = [
    {"formula": "G(a -> F b)", "trace": [["a"], [], ["b"]]},
    {"formula": "G(a -> F b)", "trace": [["a"], [], []]},
    {"formula": "G !c", "trace": [[], ["c"], []]},
    {"formula": "X a", "trace": [["a"]]},
    {"formula": "WX a", "trace": [["a"]]},
    {"formula": "F a", "trace": []},
]


def test_batch_matches_reference_and_survives_bad_lines(tmp_path) -> None:
    body = [json.dumps(x) for x in LINES[:3]]
    body += ["not json", "", json.dumps({"formula": "G(a -> )", "trace": []}), json.dumps({"trace": []}),
             json.dumps({"formula": "a", "trace": [["a"], "b"]})]
    body += [json.dumps(x) for x in LINES[3:]]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(body) + "\n")
    r = CliRunner().invoke(policy, ["check", "--batch", str(f)])
    assert r.exit_code == 0, r.output
    out = [json.loads(x) for x in r.output.splitlines()]
    assert len(out) == len(body)
    good = [o for o in out if "error" not in o]
    assert len(good) == len(LINES)
    for line, answer in zip(LINES, good, strict=True):
        ok, step = reference.check_trace(line["formula"], [set(s) for s in line["trace"]])
        assert answer == {"satisfied": ok, "violation_step": step}
    errors = [o for o in out if "error" in o]
    assert len(errors) == 5
    assert errors[2]["position"] == 7


def test_single_formula_and_explain() -> None:
    r = CliRunner().invoke(policy, ["check", "--formula", "G(a -> F b)", "--trace", '[["a"], ["c"]]', "--explain"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"satisfied": False, "violation_step": 1, "failed": "F b"}
    r = CliRunner().invoke(policy, ["check", "--formula", "G(", "--trace", "[]"])
    assert r.exit_code == 2 and "error" in json.loads(r.output)
    r = CliRunner().invoke(policy, ["check"])
    assert r.exit_code == 2


def test_unreadable_batch_file_fails(tmp_path) -> None:
    r = CliRunner().invoke(policy, ["check", "--batch", str(tmp_path / "missing.jsonl")])
    assert r.exit_code != 0


def test_lint_shipped_library_and_a_broken_file(tmp_path) -> None:
    r = CliRunner().invoke(policy, ["lint"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["example_failures"] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\npolicies:\n  - id: p\n    formula: G a\n"
                   "    examples: {violate: [{trace: [[a], [b]], step: 0}]}\n")
    r = CliRunner().invoke(policy, ["lint", str(bad)])
    assert r.exit_code == 1 and "should violate at step 0 but violates at step 1" in r.output


def test_stdin_streaming_subprocess() -> None:
    data = "".join(json.dumps(x) + "\n" for x in LINES)
    p = subprocess.run([sys.executable, "-m", "aimds.respond.policy.cli", "check", "--batch", "-"],
                       input=data, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == len(LINES)
