"""Agent traces and the agent-policy set in the service's SQLite file, shared by every worker.

A trace is the list of committed steps (each a set of atoms). Workers keep monitors in memory and
catch up from here when another worker committed steps since (only the missing steps are replayed).
A confirmation token a step used up is recorded with that step, in the same transaction, so a token
confirms one step once whichever worker sees it (a second use is a conflict, then ``used``).
The policy set is versioned: ``PUT /v1/policies`` stores a new version (audited) and every worker
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

    def token_used(self, trace_id: str, token_id: str) -> bool:
        """Whether a step of this trace used up the confirmation token ``token_id``."""
        row = self.store.reader().execute("SELECT 1 FROM trace_confirmations WHERE trace_id = ? AND token_id = ?",
                                          (trace_id, token_id)).fetchone()
        return row is not None

    def commit_step(self, trace_id: str, n: int, atoms: frozenset[str],
                    records: Sequence[dict[str, Any]] = (), used_token: str | None = None) -> list[dict[str, Any]]:
        """Durably add step ``n`` (with audit records, and the confirmation token it used up); TraceConflict
        if step ``n`` exists already or the token was used by another step."""
        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            try:
                conn.execute("INSERT INTO trace_steps(trace_id, n, ts, atoms) VALUES (?, ?, ?, ?)",
                             (trace_id, n, now, orjson.dumps(sorted(atoms)).decode()))
            except sqlite3.IntegrityError:
                raise TraceConflict(f"step {n} of trace {trace_id!r} was committed concurrently") from None
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
            return []

        self.store.append_sync([], prepare=prepare)
        return out.get("n", 0)
