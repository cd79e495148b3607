"""Agent traces and the agent-policy set in the service's SQLite file, shared by every worker.

A trace is the list of committed steps (each a set of atoms). Workers keep monitors in memory and
catch up from here when another worker committed steps since (only the missing steps are replayed).
A confirmation token a step used up is recorded with that step, in the same transaction, so a token
confirms one step once whichever worker sees it (a second use is a conflict, then ``used``).
A step whose content gets a deferred deep scan (``trace_deep_scan: deferred``) has a pending row in
``trace_deep_scans`` committed with it; the scan's extra ``flagged:*`` atoms are merged into the step when it
finishes (one transaction), and the trace's *revision* (its amended steps) tells every worker to rebuild
its monitors. The policy set is versioned: ``PUT /v1/policies`` stores a new version (audited) and every worker
picks it up on its next trace request.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

import orjson

from aimds.store.sqlite import SQLiteStore, StoreError, new_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trace_steps (
    trace_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    ts REAL NOT NULL,
    atoms TEXT NOT NULL,
    PRIMARY KEY (trace_id, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_steps_ts ON trace_steps(ts);
CREATE TABLE IF NOT EXISTS trace_confirmations (
    trace_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (trace_id, token_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_confirmations_ts ON trace_confirmations(ts);
CREATE TABLE IF NOT EXISTS trace_deep_scans (
    trace_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    ts REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    added TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (trace_id, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trace_deep_scans_ts ON trace_deep_scans(ts);
CREATE TABLE IF NOT EXISTS agent_policy_sets (
    version INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    policies TEXT NOT NULL
);
"""


class TraceConflict(StoreError):
    """Another request committed this step of the trace first."""


class TraceStore:
    """Committed trace steps and versioned policy sets."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        store.ensure_schema(_SCHEMA)

    def length(self, trace_id: str) -> int:
        """Committed steps of a trace."""
        row = self.store.reader().execute("SELECT MAX(n) FROM trace_steps WHERE trace_id = ?", (trace_id,)).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def steps(self, trace_id: str, start: int = 0) -> list[frozenset[str]]:
        """Committed steps from ``start`` on."""
        rows = self.store.reader().execute("SELECT atoms FROM trace_steps WHERE trace_id = ? AND n >= ? ORDER BY n",
                                           (trace_id, start)).fetchall()
        return [frozenset(orjson.loads(r[0])) for r in rows]

    def detail(self, trace_id: str) -> list[dict[str, Any]]:
        """Every committed step: ``{"step", "ts", "atoms", "deep_scan"}`` (``deep_scan``: None, or ``pending`` /
        ``done`` with the ``flagged:*`` atoms the full pipeline ``added``)."""
        rows = self.store.reader().execute(
            "SELECT s.n, s.ts, s.atoms, d.done, d.added FROM trace_steps s LEFT JOIN trace_deep_scans d "
            "ON d.trace_id = s.trace_id AND d.n = s.n WHERE s.trace_id = ? ORDER BY s.n", (trace_id,)).fetchall()
        return [{"step": int(n), "ts": float(ts), "atoms": orjson.loads(atoms),
                 "deep_scan": None if done is None else {"state": "done" if done else "pending",
                                                         "added": orjson.loads(added)}}
                for n, ts, atoms, done, added in rows]

    def token_used(self, trace_id: str, token_id: str) -> bool:
        """Whether a step of this trace used up the confirmation token ``token_id``."""
        row = self.store.reader().execute("SELECT 1 FROM trace_confirmations WHERE trace_id = ? AND token_id = ?",
                                          (trace_id, token_id)).fetchone()
        return row is not None

    def commit_step(self, trace_id: str, n: int, atoms: frozenset[str],
                    records: Sequence[dict[str, Any]] = (), used_token: str | None = None,
                    deep_pending: bool = False) -> list[dict[str, Any]]:
        """Durably add step ``n`` (with audit records, the confirmation token it used up, and a pending deep
        scan when ``deep_pending``); TraceConflict if step ``n`` exists already or the token was used."""
        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            try:
                conn.execute("INSERT INTO trace_steps(trace_id, n, ts, atoms) VALUES (?, ?, ?, ?)",
                             (trace_id, n, now, orjson.dumps(sorted(atoms)).decode()))
            except sqlite3.IntegrityError:
                raise TraceConflict(f"step {n} of trace {trace_id!r} was committed concurrently") from None
            if deep_pending:
                conn.execute("INSERT OR REPLACE INTO trace_deep_scans(trace_id, n, ts, done, added) "
                             "VALUES (?, ?, ?, 0, '[]')", (trace_id, n, now))
            if used_token is not None:
                try:
                    conn.execute("INSERT INTO trace_confirmations(trace_id, token_id, n, ts) VALUES (?, ?, ?, ?)",
                                 (trace_id, used_token, n, now))
                except sqlite3.IntegrityError:
                    raise TraceConflict(f"a confirmation token of trace {trace_id!r} was used concurrently") from None
            return []

        try:
            return self.store.append_sync(list(records), prepare=prepare)
        except StoreError as exc:
            if isinstance(exc.__cause__, TraceConflict):
                raise exc.__cause__ from None
            raise

    def pending_deep(self, trace_id: str) -> list[tuple[int, float]]:
        """``(step, committed at)`` of this trace's deep scans that have not finished."""
        rows = self.store.reader().execute(
            "SELECT n, ts FROM trace_deep_scans WHERE trace_id = ? AND done = 0 ORDER BY n", (trace_id,)).fetchall()
        return [(int(n), float(ts)) for n, ts in rows]

    def revision(self, trace_id: str) -> int:
        """How many steps of this trace a deep scan amended (monitors built before a change are stale)."""
        row = self.store.reader().execute(
            "SELECT COUNT(*) FROM trace_deep_scans WHERE trace_id = ? AND done = 1 AND added != '[]'",
            (trace_id,)).fetchone()
        return int(row[0])

    def finish_deep(self, trace_id: str, n: int, added: frozenset[str]) -> bool:
        """Record a finished deep scan of step ``n``: merge ``added`` into the step's atoms (one transaction).
        False when it was finished already (a stale scan settled by another worker)."""
        out: dict[str, bool] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute("UPDATE trace_deep_scans SET done = 1, added = ? WHERE trace_id = ? AND n = ? "
                               "AND done = 0", (orjson.dumps(sorted(added)).decode(), trace_id, n))
            out["ok"] = cur.rowcount == 1
            if out["ok"] and added:
                row = conn.execute("SELECT atoms FROM trace_steps WHERE trace_id = ? AND n = ?",
                                   (trace_id, n)).fetchone()
                if row is not None:
                    atoms = sorted(set(orjson.loads(row[0])) | added)
                    conn.execute("UPDATE trace_steps SET atoms = ? WHERE trace_id = ? AND n = ?",
                                 (orjson.dumps(atoms).decode(), trace_id, n))
            return []

        self.store.append_sync([], prepare=prepare)
        return out.get("ok", False)

    def policy_version(self) -> int:
        """The current policy-set version (0: the shipped library)."""
        row = self.store.reader().execute("SELECT MAX(version) FROM agent_policy_sets").fetchone()
        return int(row[0] or 0)

    def policies(self) -> tuple[int, list[dict[str, Any]] | None]:
        """(version, policy mappings) of the current set; (0, None) means the shipped library."""
        row = self.store.reader().execute(
            "SELECT version, policies FROM agent_policy_sets ORDER BY version DESC LIMIT 1").fetchone()
        return (0, None) if row is None else (int(row[0]), orjson.loads(row[1]))

    def put_policies(self, policies: list[dict[str, Any]], actor: str) -> int:
        """Store a new version of the policy set (audited); returns its version."""
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            version = int(conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM agent_policy_sets").fetchone()[0])
            conn.execute("INSERT INTO agent_policy_sets(version, ts, actor, policies) VALUES (?, ?, ?, ?)",
                         (version, time.time(), actor, orjson.dumps(policies).decode()))
            out["v"] = version
            return [{"id": new_id("adm"), "kind": "admin", "action": "policies_changed", "ts": time.time(),
                     "actor": actor, "version": version, "policy_ids": [p.get("id") for p in policies]}]

        self.store.append_sync([], prepare=prepare)
        return out["v"]

    def purge(self, older_than: float) -> int:
        """Delete steps of traces older than ``older_than`` (and the tokens they used; tokens live 15 minutes)."""
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out["n"] = conn.execute("DELETE FROM trace_steps WHERE ts < ?", (older_than,)).rowcount
            conn.execute("DELETE FROM trace_confirmations WHERE ts < ?", (older_than,))
            conn.execute("DELETE FROM trace_deep_scans WHERE ts < ?", (older_than,))
            return []

        self.store.append_sync([], prepare=prepare)
        return out.get("n", 0)
