"""``aimds serve`` and the store commands: ``keys``, ``audit``, ``events``. Every store command takes ``--data-dir``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click

_data_dir_opt = click.option(
    "--data-dir", type=click.Path(file_okay=False, path_type=Path),
    help="Data directory (default: AIMDS_DATA_DIR, else ~/.local/share/aimds — the one `aimds serve` uses).")


def _store(data_dir: Path | None, read_only: bool = False) -> Any:
    from aimds.store.sqlite import SQLiteStore, default_data_dir

    return SQLiteStore(data_dir or default_data_dir(), read_only=read_only)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@_data_dir_opt
@click.option("--detectors", help="Comma-separated detector names (default: from settings).")
@click.option("--env", "environment", type=click.Choice(["development", "production"]),
              help="Environment (default: AIMDS_ENVIRONMENT, else production).")
def serve(host: str, port: int, workers: int, data_dir: Path | None, detectors: str | None,
          environment: str | None) -> None:
    """Run the REST API (FastAPI on uvicorn)."""
    import uvicorn

    from aimds.server.settings import ServiceSettings

    if detectors:
        os.environ["AIMDS_DETECTORS"] = detectors
    settings = ServiceSettings.from_env(data_dir=data_dir, environment=environment)
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.update(settings.to_env())
    if workers > 1:  # samples of every worker aggregated at /metrics (one process keeps them in memory)
        metrics_dir = settings.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run("aimds.server.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False, backlog=4096, timeout_graceful_shutdown=10,
                server_header=False)


@click.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["detector", "analyst", "admin"]))
@click.option("--name", default="", help="A label for the key.")
@_data_dir_opt
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "key", "role"}.')
def keys_create(role: str, name: str, data_dir: Path | None, as_json: bool) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    with _store(data_dir) as store:
        key, secret = store.create_key(role, name, actor="cli")
    if as_json:
        _echo_json({"id": key.id, "key": secret, "role": key.role})
    else:
        click.echo(f"id:   {key.id}\nrole: {key.role}\nkey:  {secret}\n(store it now: it is not shown again)")


@keys.command("list")
@_data_dir_opt
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
def keys_list(data_dir: Path | None, as_json: bool) -> None:
    """List keys (never their secrets)."""
    with _store(data_dir, read_only=True) as store:
        items = store.list_keys()
    for k in items:
        if as_json:
            _echo_json(k.to_dict())
        else:
            state = "revoked" if k.revoked else "active"
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(k.created))
            click.echo(f"{k.id}  {k.role:<8}  {state:<7}  {created}  {k.name}")


@keys.command("revoke")
@click.argument("key_id")
@_data_dir_opt
def keys_revoke(key_id: str, data_dir: Path | None) -> None:
    """Revoke a key."""
    with _store(data_dir) as store:
        ok = store.revoke_key(key_id, actor="cli")
    if not ok:
        raise click.ClickException(f"no active key {key_id!r}")
    click.echo(f"revoked {key_id}")


@click.group()
def audit() -> None:
    """The tamper-evident audit chain."""


@audit.command("verify")
@_data_dir_opt
@click.option("--public-key", "public_keys", multiple=True, type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Extra Ed25519 public keys (PEM) that may have signed checkpoints.")
def audit_verify(data_dir: Path | None, public_keys: tuple[Path, ...]) -> None:
    """Verify the chain; exit 0 when intact, 1 with the first broken position otherwise."""
    with _store(data_dir, read_only=True) as store:
        report = store.verify(public_keys)
    _echo_json(report.to_dict())
    if not report.ok:
        sys.exit(1)


@audit.command("export")
@_data_dir_opt
@click.option("--out", type=click.Path(dir_okay=False), default="-", show_default=True, help="JSONL file.")
def audit_export(data_dir: Path | None, out: str) -> None:
    """Write the chain (header with algorithm and public keys, records, checkpoints) as JSON lines."""
    with _store(data_dir, read_only=True) as store:
        fh = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
        try:
            for item in store.export():
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        finally:
            if fh is not sys.stdout:
                fh.close()


@click.group()
def events() -> None:
    """Stored detection events."""


@events.command("purge")
@_data_dir_opt
@click.option("--older-than-days", type=float, help="Retention (default: AIMDS_RETENTION_DAYS, else 30).")
def events_purge(data_dir: Path | None, older_than_days: float | None) -> None:
    """Delete events past the retention period (the chain stays verifiable)."""
    from aimds.server.settings import ServiceSettings

    days = older_than_days if older_than_days is not None else ServiceSettings.from_env().retention_days
    if days <= 0:
        raise click.BadParameter("must be positive", param_hint="--older-than-days")
    from aimds.store.graph import AttackGraph
    from aimds.store.outbox import Outbox, SessionFlags
    from aimds.store.sessions import SQLiteSessionStore
    from aimds.store.traces import TraceStore

    cutoff = time.time() - days * 86400
    with _store(data_dir) as store:
        n = store.purge(cutoff, actor="cli")
        turns = SQLiteSessionStore(store).purge(cutoff)
        graph = AttackGraph(store).purge(cutoff)
        outbox = Outbox(store).purge(cutoff)
        flags = SessionFlags(store).purge()
        steps = TraceStore(store).purge(cutoff)
    _echo_json({"deleted": n, "session_turns_deleted": turns, "graph_deleted": graph, "outbox_deleted": outbox,
                "expired_flags_deleted": flags, "trace_steps_deleted": steps, "older_than_days": days})


COMMANDS = (serve, keys, audit, events)
