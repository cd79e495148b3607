"""``aimds graph …`` (causal attack graph queries and exports) and ``aimds outbox …`` (response alerts).

Every command takes ``--data-dir`` (the directory ``aimds serve`` uses) and prints JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

_data_dir_opt = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (default: AIMDS_DATA_DIR, else ~/.local/share/aimds — the one `aimds serve` uses).")


def _store(data_dir: Path | None) -> Any:
    from aimds.store.sqlite import SQLiteStore, default_data_dir

    return SQLiteStore(data_dir or default_data_dir())


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


def _resolve(graph: Any, ref: str) -> str:
    node = graph.resolve(ref)
    if node is None:
        raise click.ClickException(f"no graph node for {ref!r} (try detection:<event id>, violation:<id>, "
                                   "session:<id>, user:<id>, key:<id>)")
    return str(node)


@click.group()
def graph() -> None:
    """The causal attack graph: sessions, sources, inputs, detections, violations, responses."""


@graph.command("chain")
@click.argument("node_id")
@click.option("--depth", default=50, show_default=True, type=click.IntRange(1, 1000), help="Steps back at most.")
@_data_dir_opt
def graph_chain(node_id: str, depth: int, data_dir: Path | None) -> None:
    """What led to NODE_ID (a violation, detection … or its bare id such as evt_…), oldest first."""
    from aimds.store.graph import AttackGraph

    with _store(data_dir) as store:
        g = AttackGraph(store)
        _echo_json(g.chain(_resolve(g, node_id), max_depth=depth).to_dict())


@graph.command("related")
@click.argument("node_id")
@click.option("--hops", default=2, show_default=True, type=click.IntRange(0, 10))
@click.option("--hours", default=24.0, show_default=True, type=click.FloatRange(min=0.0),
              help="Only through nodes seen within this many hours of NODE_ID.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--type", "types", multiple=True, help="Only report nodes of this type (repeatable).")
@_data_dir_opt
def graph_related(node_id: str, hops: int, hours: float, limit: int, types: tuple[str, ...],
                  data_dir: Path | None) -> None:
    """Nodes within --hops edges of NODE_ID (either direction), nearest first."""
    from aimds.store.graph import AttackGraph

    with _store(data_dir) as store:
        g = AttackGraph(store)
        _echo_json(g.related(_resolve(g, node_id), hops=hops, hours=hours, limit=limit, types=types or None)
                   .to_dict())


@graph.command("sources")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--hours", type=click.FloatRange(min=0.0), help="Only detections of the last N hours.")
@_data_dir_opt
def graph_sources(limit: int, hours: float | None, data_dir: Path | None) -> None:
    """The most active attack sources (users and API keys) by flagged inputs."""
    from aimds.store.graph import AttackGraph

    with _store(data_dir) as store:
        _echo_json(AttackGraph(store).sources(limit=limit, hours=hours))


@graph.command("export")
@click.option("--format", "fmt", type=click.Choice(["graphml", "cypher"]), default="graphml", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True)
@_data_dir_opt
def graph_export(fmt: str, out: str, data_dir: Path | None) -> None:
    """Write the whole graph as GraphML (Gephi, yEd, networkx) or Cypher (Neo4j: cypher-shell < FILE)."""
    from aimds.store.graph import AttackGraph

    with _store(data_dir) as store:
        g = AttackGraph(store)
        fh = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
        try:
            (g.write_graphml if fmt == "graphml" else g.write_cypher)(fh)
        finally:
            if fh is not sys.stdout:
                fh.close()


@click.group()
def outbox() -> None:
    """Response alerts waiting for delivery, delivered, or dead-lettered."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["pending", "delivered", "dead"]))
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@_data_dir_opt
def outbox_list(status: str | None, limit: int, data_dir: Path | None) -> None:
    """Counts per status, then one JSON line per row (newest first)."""
    from aimds.store.outbox import Outbox

    with _store(data_dir) as store:
        box = Outbox(store)
        _echo_json({"counts": box.counts()})
        for row in box.list(status, limit):
            _echo_json(row.to_dict())


@outbox.command("retry")
@click.option("--id", "ids", multiple=True, help="Only this action id (repeatable; default: every dead row).")
@_data_dir_opt
def outbox_retry(ids: tuple[str, ...], data_dir: Path | None) -> None:
    """Make dead-lettered alerts pending again; the running service delivers them at its next sweep (seconds)."""
    from aimds.store.outbox import Outbox

    with _store(data_dir) as store:
        _echo_json({"requeued": Outbox(store).retry_dead(ids)})


COMMANDS = (graph, outbox)
