"""``aimds policy``: check traces against LTLf formulas and lint policy files.

    aimds policy check --batch corpus.jsonl     # {"formula": str, "trace": [[atom, …], …]} per line
    aimds policy check --formula 'G(a -> F b)' --trace '[["a"], ["b"]]'
    aimds policy lint [FILES…]                   # the shipped library when no file is given

``check`` prints one JSON line per input line, ``{"satisfied": bool, "violation_step": int | null}``
(0-based; see :mod:`aimds.respond.policy.reference` for the definition), or ``{"error": "…"}`` for a
line that cannot be checked; it streams, in one process, and exits 0 unless the input is unreadable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from aimds.errors import AIMDSError, ConfigError
from aimds.respond.policy.agent import load_policies
from aimds.respond.policy.ltl import FormulaError
from aimds.respond.policy.progression import Monitor, check_trace

MAX_LINE_STEPS = 1_000_000


def _parse_trace(raw: Any) -> list[frozenset[str]]:
    if not isinstance(raw, list):
        raise ValueError("'trace' must be a list of steps")
    if len(raw) > MAX_LINE_STEPS:
        raise ValueError(f"trace longer than {MAX_LINE_STEPS} steps")
    steps = []
    for i, step in enumerate(raw):
        if not isinstance(step, list) or not all(isinstance(a, str) for a in step):
            raise ValueError(f"step {i} must be a list of atom strings")
        steps.append(frozenset(step))
    return steps


def check_line(line: str, explain: bool = False) -> dict[str, Any]:
    """The JSON answer for one batch line (never raises for bad input)."""
    try:
        item = json.loads(line)
    except ValueError as exc:
        return {"error": f"invalid JSON: {exc}"}
    if not isinstance(item, dict) or not isinstance(item.get("formula"), str) or "trace" not in item:
        return {"error": "expected an object with a string 'formula' and a 'trace'"}
    try:
        trace = _parse_trace(item["trace"])
        if not explain:
            ok, step = check_trace(item["formula"], trace)
            return {"satisfied": ok, "violation_step": step}
        m = Monitor(item["formula"])
        for atoms in trace:
            if m.step(atoms).status == "violated":
                break
        ok = m.violation_step is None and m.finish()
        return {"satisfied": ok, "violation_step": m.violation_step, "failed": m.failed}
    except FormulaError as exc:
        return {"error": f"formula: {exc.reason} at position {exc.position}", "position": exc.position}
    except (ValueError, AIMDSError, RecursionError) as exc:
        return {"error": str(exc)}


def _lines(stream: TextIO) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\r\n")


@click.group("policy")
def policy() -> None:
    """Temporal (LTLf) policies over agent traces."""


@policy.command("check")
@click.option("--batch", "batch", type=str, default=None, help="JSONL file of {formula, trace} lines ('-': stdin).")
@click.option("--formula", type=str, default=None, help="A formula to check one trace against.")
@click.option("--trace", "trace_json", type=str, default=None, help='The trace as JSON: [["atom", …], …].')
@click.option("--explain", is_flag=True, help="Add the failed sub-formula ('failed') to each answer.")
def check(batch: str | None, formula: str | None, trace_json: str | None, explain: bool) -> None:
    """Check traces against formulas; one JSON line per input."""
    if batch is not None and (formula is not None or trace_json is not None):
        raise click.UsageError("give --batch, or --formula with --trace, not both")
    if batch is None:
        if formula is None or trace_json is None:
            raise click.UsageError("give --batch FILE, or --formula and --trace")
        out = check_line(json.dumps({"formula": formula, "trace": _loads(trace_json)}), explain)
        click.echo(json.dumps(out))
        if "error" in out:
            raise SystemExit(2)
        return
    try:
        stream: TextIO = sys.stdin if batch == "-" else open(batch, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise click.FileError(batch, hint=str(exc)) from None
    write = sys.stdout.write
    try:
        for line in _lines(stream):
            write(json.dumps(check_line(line, explain)) + "\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.FileError(batch, hint=str(exc)) from None
    finally:
        if stream is not sys.stdin:
            stream.close()
        sys.stdout.flush()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--trace") from None


@policy.command("lint")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
def lint(files: tuple[Path, ...]) -> None:
    """Validate policy files and run their examples (the shipped library when none is given)."""
    try:
        policies = load_policies(list(files) if files else None)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    failures = 0
    for p in policies:
        for ex in p.satisfy:
            got = check_trace(p.formula, ex.trace)
            if got != (True, None):
                failures += 1
                click.echo(f"{p.source}: {p.id}: example should satisfy but violates at step {got[1]}", err=True)
        for ex in p.violate:
            got = check_trace(p.formula, ex.trace)
            if got != (False, ex.step):
                failures += 1
                what = "satisfies" if got[0] else f"violates at step {got[1]}"
                click.echo(f"{p.source}: {p.id}: example should violate at step {ex.step} but {what}", err=True)
    click.echo(json.dumps({"policies": len(policies), "example_failures": failures}))
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":  # pragma: no cover
    policy()
