"""``aimds feedback``, ``aimds memory list|remove|export|import`` and ``aimds report learning`` (issue 4).

Every command takes ``--data-dir`` (the store ``aimds serve`` uses) and acts as an admin (``actor: cli``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from aimds.cli_service import _data_dir_opt, _echo_json, _store


def _memory(store: Any) -> Any:
    from aimds.store.memory_live import AttackMemory

    return AttackMemory(store)


@click.command()
@click.option("--file", "file_", required=True, type=click.Path(exists=True, dir_okay=False),
              help='JSONL: {"event_id" or "text", "label": "attack"|"benign", "category"?, "note"?, "tenant"?}')
@_data_dir_opt
def feedback(file_: str, data_dir: Path | None) -> None:
    """Apply labelled feedback as an admin: each line becomes an exemplar at once (audited)."""
    applied = errors = 0
    with _store(data_dir) as store:
        mem = _memory(store)
        for n, line in enumerate(Path(file_).read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                label = item["label"]
                event = store.get_event(item["event_id"]) if item.get("event_id") else None
                text = item.get("text") or (event or {}).get("text")
                if not text:
                    raise ValueError("needs 'text' (or an event whose text is stored)")
                ns = item.get("tenant") or (event or {}).get("tenant") or "default"
                ex = mem.add_text(text, label, "cli", namespace=ns, category=item.get("category", ""),
                                  note=item.get("note", ""))
                mem.tables.log_outcome(label=label, actor="cli", event=event, category=item.get("category", ""))
                applied += 1
                _echo_json({"line": n, "exemplar_id": ex})
            except (ValueError, KeyError, TypeError) as exc:
                errors += 1
                click.echo(f"line {n}: {exc}", err=True)
    _echo_json({"applied": applied, "errors": errors})
    if errors:
        sys.exit(1)


@click.group()
def memory() -> None:
    """The attack memory: exemplars of attacks and of confirmed false positives."""


@memory.command("list")
@_data_dir_opt
@click.option("--kind", type=click.Choice(["attack", "benign"]))
@click.option("--status", type=click.Choice(["active", "removed"]), default="active", show_default=True)
@click.option("--source", help="e.g. feedback, review, import, seed:bipia")
@click.option("--limit", type=int, default=50, show_default=True)
def memory_list(data_dir: Path | None, kind: str | None, status: str, source: str | None, limit: int) -> None:
    """Exemplars as JSON lines, newest first."""
    from aimds.store.memory import MemoryStore

    with _store(data_dir) as store:
        tables = MemoryStore(store)
        items, _ = tables.list(kind=kind, status=status, source=source, limit=limit)
        for e in items:
            _echo_json(e.to_dict())


@memory.command("remove")
@click.argument("exemplar_id")
@_data_dir_opt
@click.option("--note", default="")
def memory_remove(exemplar_id: str, data_dir: Path | None, note: str) -> None:
    """Remove an exemplar (audited; an export re-imported restores it)."""
    from aimds.store.memory import MemoryStore

    with _store(data_dir) as store:
        ok = MemoryStore(store).remove(exemplar_id, "cli", note)
    if not ok:
        raise click.ClickException(f"no active exemplar {exemplar_id!r}")
    _echo_json({"id": exemplar_id, "removed": True})


@memory.command("export")
@_data_dir_opt
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True)
@click.option("--active-only", is_flag=True)
def memory_export(data_dir: Path | None, out: str, active_only: bool) -> None:
    """Write every exemplar (with its int8 embedding as hex) as JSON lines."""
    from aimds.store.memory import MemoryStore

    with _store(data_dir) as store:
        fh = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
        try:
            for d in MemoryStore(store).export(include_removed=not active_only):
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
        finally:
            if fh is not sys.stdout:
                fh.close()


@memory.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@_data_dir_opt
def memory_import(path: str, data_dir: Path | None) -> None:
    """Import an export: unknown exemplars are added, removed ones active in the file are restored."""
    from aimds.store.memory import MemoryStore

    items = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
    with _store(data_dir) as store:
        _echo_json(MemoryStore(store).import_(items, "cli"))


def learning_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of the reflexion log: outcomes, and per detector how often it decided wrongly and on what."""
    errors = Counter(r["error"] for r in rows)
    per: dict[str, Counter[str]] = {}
    for r in rows:
        for d in r["deciders"] or ["(none)"]:
            per.setdefault(d, Counter())[r["error"]] += 1
    by_cat: dict[str, Counter[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"] or "(none)", Counter())[r["error"]] += 1
    fn_missed = Counter(r["category"] or "(none)" for r in rows if r["error"] == "false_negative")
    return {"outcomes": len(rows), "errors": dict(errors),
            "accuracy": round(sum(1 for r in rows if r["correct"]) / max(1, sum(1 for r in rows
                                                                                if r["correct"] is not None)), 4),
            "detectors": {d: dict(c) for d, c in sorted(per.items())},
            "categories": {c: dict(v) for c, v in sorted(by_cat.items())},
            "missed_categories": dict(fn_missed.most_common(10))}


@click.group()
def report() -> None:
    """Reports over the store."""


@report.command("learning")
@_data_dir_opt
@click.option("--since", type=float, help="epoch seconds")
def report_learning(data_dir: Path | None, since: float | None) -> None:
    """Which detectors err, and on what (from the reflexion log of outcomes that received feedback)."""
    from aimds.store.memory import MemoryStore

    with _store(data_dir) as store:
        rows = MemoryStore(store).reflexion(since)
        counts = MemoryStore(store).count()
    click.echo(json.dumps({**learning_report(rows), "memory": counts}, indent=1, ensure_ascii=False))


COMMANDS = (feedback, memory, report)
