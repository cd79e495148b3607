"""Versioned classifier models in the store: the registry of learned versions and the active one.

A learned version lives in ``<data_dir>/models/<version>/`` (``linear.npz``, ``operating_points.yaml``,
``manifest.json`` with sha256 of both files, metrics and the parent version); it is never written
over the shipped model. The store keeps:

- ``model_versions``: one row per registered version (its manifest).
- ``model_activations``: an append-only log; the latest row names the active version
  (``shipped`` = the model packaged with aimds). Every worker polls it (about once a second) and
  swaps its classifier when it changes, so activation and rollback need no restart.

Registration, activation and rollback each commit with a chained admin record (``model_registered``,
``model_activated``) in the same transaction: every change of the running model is audited.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aimds.errors import ModelError
from aimds.store.sqlite import SQLiteStore, new_id

SHIPPED = "shipped"
MODELS_DIR = "models"
MANIFEST = "manifest.json"
MODEL_FILE = "linear.npz"
POINTS_FILE = "operating_points.yaml"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_versions (
    version TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    parent TEXT NOT NULL,
    created_by TEXT NOT NULL,
    manifest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
"""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def version_dir(data_dir: Path, version: str) -> Path:
    """Where ``version``'s files live."""
    return Path(data_dir) / MODELS_DIR / version


def verify_files(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Raise ModelError unless every file listed in the manifest exists with its recorded sha256."""
    for name, digest in (manifest.get("files") or {}).items():
        p = folder / name
        if not p.is_file():
            raise ModelError(f"model version {manifest.get('version')!r}: missing {p}")
        if sha256_file(p) != digest:
            raise ModelError(f"model version {manifest.get('version')!r}: {name} does not match its manifest "
                             "(corrupt or tampered)")


class ModelRegistry:
    """The model tables of one :class:`SQLiteStore`."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        store.ensure_schema(_SCHEMA)

    @property
    def data_dir(self) -> Path:
        """The store's data directory (versions live under ``models/``)."""
        return self.store.data_dir

    def register(self, manifest: Mapping[str, Any], actor: str) -> bool:
        """Record a version whose files are already in place (audited); False when already known."""
        version = str(manifest["version"])
        verify_files(version_dir(self.data_dir, version), manifest)
        added: dict[str, bool] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            cur = conn.execute("INSERT OR IGNORE INTO model_versions(version, ts, parent, created_by, manifest)"
                               " VALUES (?, ?, ?, ?, ?)", (version, now, str(manifest.get("parent", SHIPPED)),
                                                           actor, json.dumps(manifest, sort_keys=True)))
            added["ok"] = cur.rowcount == 1
            if not added["ok"]:
                return []
            return [{"id": new_id("adm"), "kind": "admin", "action": "model_registered", "ts": now, "actor": actor,
                     "target": version, "parent": manifest.get("parent", SHIPPED),
                     "sha256": dict(manifest.get("files") or {})}]

        self.store.append_sync([], prepare=prepare)
        return added.get("ok", False)

    def get(self, version: str) -> dict[str, Any] | None:
        """A version's manifest (``shipped`` gives a minimal one)."""
        if version == SHIPPED:
            return {"version": SHIPPED, "parent": None, "files": {}}
        row = self.store.reader().execute("SELECT manifest FROM model_versions WHERE version = ?",
                                          (version,)).fetchone()
        return None if row is None else json.loads(row[0])

    def list(self) -> list[dict[str, Any]]:
        """Every registered version (oldest first) with ``active`` set on the running one."""
        active = self.active()
        rows = self.store.reader().execute(
            "SELECT version, ts, parent, created_by, manifest FROM model_versions ORDER BY ts").fetchall()
        out = [{"version": SHIPPED, "ts": None, "parent": None, "created_by": "package", "active": active == SHIPPED}]
        for version, ts, parent, by, manifest in rows:
            m = json.loads(manifest)
            out.append({"version": version, "ts": ts, "parent": parent, "created_by": by, "active": active == version,
                        "metrics": m.get("metrics", {}), "files": m.get("files", {})})
        return out

    def active(self) -> str:
        """The active version (``shipped`` when none was ever activated)."""
        row = self.store.reader().execute(
            "SELECT version FROM model_activations ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row[0]) if row else SHIPPED

    def activate(self, version: str, actor: str, reason: str = "activate") -> dict[str, Any]:
        """Make ``version`` the active one (audited); raises ModelError for an unknown or broken version."""
        manifest = self.get(version)
        if manifest is None:
            raise ModelError(f"no model version {version!r}")
        if version != SHIPPED:
            verify_files(version_dir(self.data_dir, version), manifest)
        out: dict[str, Any] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            row = conn.execute("SELECT version FROM model_activations ORDER BY seq DESC LIMIT 1").fetchone()
            previous = str(row[0]) if row else SHIPPED
            conn.execute("INSERT INTO model_activations(version, ts, actor, reason) VALUES (?, ?, ?, ?)",
                         (version, now, actor, reason))
            out.update({"version": version, "previous": previous, "reason": reason})
            return [{"id": new_id("adm"), "kind": "admin", "action": "model_activated", "ts": now, "actor": actor,
                     "target": version, "previous": previous, "reason": reason}]

        self.store.append_sync([], prepare=prepare)
        return out

    def rollback(self, actor: str, to: str | None = None) -> dict[str, Any]:
        """Activate ``to``, or else the active version's parent (``shipped`` at the root); audited."""
        if to is None:
            current = self.active()
            if current == SHIPPED:
                raise ModelError("the shipped model is active: nothing to roll back")
            manifest = self.get(current) or {}
            to = str(manifest.get("parent") or SHIPPED)
            if to != SHIPPED and self.get(to) is None:
                to = SHIPPED  # the parent was never registered here: fall back to the packaged model
        return self.activate(to, actor, reason="rollback")

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """Activations, newest first."""
        rows = self.store.reader().execute(
            "SELECT seq, version, ts, actor, reason FROM model_activations ORDER BY seq DESC LIMIT ?",
            (limit,)).fetchall()
        return [dict(zip(("seq", "version", "ts", "actor", "reason"), r, strict=True)) for r in rows]
