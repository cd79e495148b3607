"""Session turns and user baselines in the service's SQLite file, shared by every worker process.

Implements :class:`aimds.analyze.session.SessionStore`. Turns hold a bounded, redacted, normalised excerpt
(never the raw text), a keyed hash of the text, the turn's risk, categories and features. Writes go
through the store's group-commit writer without waiting (a turn is committed no later than the event
of the same request, which the API does wait for).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sqlite3
import time
from typing import Any

import numpy as np
import orjson

from aimds.analyze.session import Baseline, Turn
from aimds.store.sqlite import SQLiteStore

log = logging.getLogger("aimds.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS session_turns (
    session_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    ts REAL NOT NULL,
    role TEXT NOT NULL,
    risk REAL NOT NULL,
    categories TEXT NOT NULL,
    features TEXT NOT NULL,
    text_norm TEXT NOT NULL,
    text_hmac TEXT NOT NULL,
    PRIMARY KEY (session_id, n)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_turns_ts ON session_turns(ts);
CREATE TABLE IF NOT EXISTS user_baselines (
    user_id TEXT PRIMARY KEY,
    n INTEGER NOT NULL,
    mean TEXT NOT NULL,
    m2 TEXT NOT NULL
);
"""


class SQLiteSessionStore:
    """Per-session turn history and per-user feature baselines in SQLite."""

    def __init__(self, store: SQLiteStore, hash_key: bytes = b"", max_turns: int = 50) -> None:
        self.store = store
        self.hash_key = hash_key
        self.max_turns = max_turns
        store.ensure_schema(_SCHEMA)

    def history(self, session_id: str, limit: int = 50) -> list[Turn]:
        """The session's last ``limit`` turns, oldest first."""
        if limit <= 0:
            return []
        rows = self.store.reader().execute(
            "SELECT text_norm, role, risk, categories, features, ts FROM session_turns WHERE session_id = ? "
            "ORDER BY n DESC LIMIT ?", (session_id, limit)).fetchall()
        return [Turn(t, role, risk, tuple(orjson.loads(c)), tuple(orjson.loads(f)), ts)
                for t, role, risk, c, f, ts in reversed(rows)]

    def append(self, session_id: str, turn: Turn, user_id: str | None = None, text: str | None = None) -> None:
        """Queue the turn (and the user's baseline update) for the next group commit."""
        digest = hmac.new(self.hash_key, (text or turn.text_norm).encode("utf-8", "replace"),
                          hashlib.sha256).hexdigest()
        ts = turn.ts or time.time()
        row = (session_id, ts, turn.role, float(turn.risk), orjson.dumps(list(turn.categories)).decode(),
               orjson.dumps([float(x) for x in turn.features]).decode(), turn.text_norm, digest)
        max_turns = self.max_turns

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            last = conn.execute("SELECT MAX(n) FROM session_turns WHERE session_id = ?", (session_id,)).fetchone()[0]
            n = 0 if last is None else last + 1
            conn.execute("INSERT INTO session_turns(session_id, n, ts, role, risk, categories, features, text_norm, "
                         "text_hmac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (row[0], n, *row[1:]))
            if n >= max_turns:
                conn.execute("DELETE FROM session_turns WHERE session_id = ? AND n <= ?", (session_id, n - max_turns))
            if user_id is not None and turn.features:
                _update_baseline(conn, user_id, np.asarray(turn.features, dtype=np.float64))
            return []

        self.store.append([], _log_error, prepare=prepare)

    def baseline(self, user_id: str) -> Baseline | None:
        """The user's running feature mean and variance."""
        row = self.store.reader().execute("SELECT n, mean, m2 FROM user_baselines WHERE user_id = ?",
                                           (user_id,)).fetchone()
        if row is None:
            return None
        n, mean, m2 = row[0], np.asarray(orjson.loads(row[1])), np.asarray(orjson.loads(row[2]))
        var = m2 / (n - 1) if n > 1 else np.zeros_like(m2)
        return Baseline(n, tuple(float(v) for v in mean), tuple(float(v) for v in var))

    def purge(self, older_than: float) -> int:
        """Delete turns older than ``older_than`` (epoch seconds)."""
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out["n"] = conn.execute("DELETE FROM session_turns WHERE ts < ?", (older_than,)).rowcount
            return []

        self.store.append_sync([], prepare=prepare)
        return out.get("n", 0)


def _update_baseline(conn: sqlite3.Connection, user_id: str, x: np.ndarray) -> None:
    row = conn.execute("SELECT n, mean, m2 FROM user_baselines WHERE user_id = ?", (user_id,)).fetchone()
    if row is None or len(orjson.loads(row[1])) != len(x):
        n, mean, m2 = 0, np.zeros_like(x), np.zeros_like(x)
    else:
        n, mean, m2 = row[0], np.asarray(orjson.loads(row[1])), np.asarray(orjson.loads(row[2]))
    n += 1
    delta = x - mean
    mean = mean + delta / n
    m2 = m2 + delta * (x - mean)
    conn.execute("INSERT OR REPLACE INTO user_baselines(user_id, n, mean, m2) VALUES (?, ?, ?, ?)",
                 (user_id, n, orjson.dumps(mean.tolist()).decode(), orjson.dumps(m2.tolist()).decode()))


def _log_error(_: Any, error: BaseException | None) -> None:
    if error is not None:
        log.error("session turn not stored: %s", error)
