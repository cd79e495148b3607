"""The persisted outbox of response actions, and the session flags (quarantine …) the service checks.

Both live in the service's SQLite file and are written through the store's group-commit writer.

Outbox: an alert (``alert_webhook``, ``escalate`` — the kinds marked ``durable``) is a row before it is
queued: ``pending`` → ``delivered``, or ``dead`` after its last attempt (dead letter; ``aimds outbox retry``
makes it pending again). A process holds its pending rows through a lease (``owner``, ``lease_until``)
that it renews while running; after a crash the rows are claimed again once the lease lapses, at once
when the owner was a process on this host that no longer exists. Delivery is at least once: receivers
deduplicate on the action id (the ``X-AIMDS-Delivery`` header).

Session flags: ``quarantined``, ``blocked``, ``confirm_required`` with an expiry time, one row per
(session, flag); every worker process sees a flag as soon as it is committed.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from aimds.respond.actions import ResponseAction
from aimds.store.sqlite import SQLiteStore, StoreError

log = logging.getLogger("aimds.store")

STATUSES: Final = ("pending", "delivered", "dead")
FLAGS: Final = ("quarantined", "blocked", "confirm_required")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created REAL NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(status, next_at);
CREATE INDEX IF NOT EXISTS outbox_owner ON outbox(owner) WHERE status = 'pending';
CREATE TABLE IF NOT EXISTS session_flags (
    session_id TEXT NOT NULL,
    flag TEXT NOT NULL,
    until REAL NOT NULL,
    ts REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    action_id TEXT,
    PRIMARY KEY (session_id, flag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_flags_until ON session_flags(until);
"""

Done = Callable[[BaseException | None], None]
Write = Callable[[sqlite3.Connection], Any]


class Coalescer:
    """Many small asynchronous writes folded into one store item: at most one item waits in the writer's
    queue at a time and, when its turn comes, runs every write queued so far in the same transaction.
    A burst of thousands of writes costs the writer a handful of items instead of thousands."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._pending: list[tuple[Write, Done | None]] = []
        self._scheduled = False

    def put(self, write: Write, done: Done | None = None) -> None:
        """Queue ``write(conn)``; ``done(error)`` runs after its transaction (from the writer thread)."""
        with self._lock:
            self._pending.append((write, done))
            if self._scheduled:
                return
            self._scheduled = True
        taken: list[tuple[Write, Done | None]] = []

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            with self._lock:
                taken.extend(self._pending)
                self._pending.clear()
                self._scheduled = False
            for w, _ in taken:
                w(conn)
            return []

        def finished(_: Any, error: BaseException | None) -> None:
            if error is not None:
                log.error("outbox write failed: %s", error)
                with self._lock:
                    if not taken:  # the transaction failed before prepare ran: nothing was taken
                        taken.extend(self._pending)
                        self._pending.clear()
                        self._scheduled = False
            for _, d in taken:
                if d is not None:
                    try:
                        d(error)
                    except Exception:
                        log.exception("outbox callback failed")

        try:
            self.store.append([], finished, prepare=prepare)
        except Exception as exc:
            with self._lock:
                self._scheduled = False
            raise StoreError(f"outbox write not queued: {exc}") from exc


def _ensure_schema(store: SQLiteStore) -> None:
    store.ensure_schema(_SCHEMA)


def process_owner() -> str:
    """This process's lease owner id: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _owner_gone(owner: str | None, host: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs."""
    if not owner:
        return True
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One outbox entry as stored."""

    action: ResponseAction
    status: str
    attempts: int
    next_at: float
    owner: str | None
    lease_until: float
    last_error: str | None
    done_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``aimds outbox list``)."""
        return {**self.action.to_dict(), "status": self.status, "attempts": self.attempts, "next_at": self.next_at,
                "owner": self.owner, "lease_until": self.lease_until, "last_error": self.last_error,
                "done_at": self.done_at}


class Outbox:
    """Pending alerts that must survive a restart (see the module docstring)."""

    def __init__(self, store: SQLiteStore, *, owner: str | None = None, lease_s: float = 30.0) -> None:
        self.store = store
        self.owner = owner or process_owner()
        self.lease_s = lease_s
        self._host = socket.gethostname()
        self._writes = Coalescer(store)
        _ensure_schema(store)

    # ----------------------------------------------------------------- writes (group commit)
    def add(self, actions: Sequence[ResponseAction], done: Done | None = None) -> None:
        """Queue rows for the next group commit, leased to this process; ``done(error)`` runs after it."""
        batch = list(actions)
        self._write(lambda conn: self._insert(conn, batch), done)

    def add_sync(self, actions: Sequence[ResponseAction]) -> None:
        """Add rows and wait until they are durable."""
        self._write_sync(lambda conn: self._insert(conn, actions))

    def _insert(self, conn: sqlite3.Connection, actions: Sequence[ResponseAction]) -> list[dict[str, Any]]:
        now = time.time()
        conn.executemany(
            "INSERT OR IGNORE INTO outbox(id, kind, priority, created, body, attempts, next_at, owner, lease_until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a.id, str(a.kind), int(a.priority), a.created, orjson.dumps(a.to_dict()).decode(), a.attempts, now,
              self.owner, now + self.lease_s) for a in actions])
        return []

    def mark_delivered(self, action_id: str, attempts: int, done: Done | None = None) -> None:
        """Record a successful delivery."""
        now = time.time()
        self._write(lambda conn: _exec(conn, "UPDATE outbox SET status = 'delivered', attempts = ?, done_at = ?, "
                                             "owner = NULL, last_error = NULL WHERE id = ?",
                                       (attempts, now, action_id)), done)

    def mark_retry(self, action_id: str, attempts: int, next_at: float, error: str, done: Done | None = None) -> None:
        """Record a failed attempt and when the next one is due (the lease covers the wait)."""
        lease = next_at + self.lease_s
        self._write(lambda conn: _exec(conn, "UPDATE outbox SET attempts = ?, next_at = ?, last_error = ?, "
                                             "owner = ?, lease_until = ? WHERE id = ? AND status = 'pending'",
                                       (attempts, next_at, error[:500], self.owner, lease, action_id)), done)

    def mark_dead(self, action_id: str, attempts: int, error: str, done: Done | None = None) -> None:
        """Move a row to the dead letter (no more automatic attempts)."""
        now = time.time()
        self._write(lambda conn: _exec(conn, "UPDATE outbox SET status = 'dead', attempts = ?, last_error = ?, "
                                             "done_at = ?, owner = NULL WHERE id = ?",
                                       (attempts, error[:500], now, action_id)), done)

    def release(self, ids: Iterable[str] | None = None) -> None:
        """Give up this process's leases (at shutdown) so that the next process claims the rows at once."""
        if ids is None:
            self._write_sync(lambda conn: _exec(conn, "UPDATE outbox SET lease_until = 0, owner = NULL "
                                                      "WHERE owner = ? AND status = 'pending'", (self.owner,)))
            return
        batch = [(self.owner, i) for i in ids]
        self._write_sync(lambda conn: _execmany(conn, "UPDATE outbox SET lease_until = 0, owner = NULL "
                                                      "WHERE owner = ? AND id = ? AND status = 'pending'", batch))

    def renew(self, done: Done | None = None) -> None:
        """Extend this process's leases on its pending rows."""
        args = (time.time() + self.lease_s, self.owner)
        self._write(lambda conn: _exec(conn, "UPDATE outbox SET lease_until = MAX(lease_until, ?) "
                                             "WHERE owner = ? AND status = 'pending'", args), done)

    def claim(self, limit: int = 1000, *, exclude: Iterable[str] = (), now: float | None = None
              ) -> list[tuple[ResponseAction, float]]:
        """Lease up to ``limit`` pending rows that no live process holds (this process's own rows count as free
        unless listed in ``exclude``): ``(action, due)`` pairs, most urgent first, ``due`` being when the
        next attempt is due (epoch seconds; may be in the future after a failed attempt)."""
        t = time.time() if now is None else now
        skip = set(exclude)
        out: dict[str, Any] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT id, body, attempts, next_at, owner, lease_until FROM outbox WHERE status = 'pending' "
                "ORDER BY priority, created LIMIT ?", (limit + len(skip) + 256,)).fetchall()
            taken: list[tuple[ResponseAction, float]] = []
            for rid, body, attempts, next_at, owner, lease_until in rows:
                if rid in skip:
                    continue
                free = owner == self.owner or lease_until < t or _owner_gone(owner, self._host)
                if not free:
                    continue
                action = ResponseAction.from_dict(orjson.loads(body)).with_attempts(attempts)
                taken.append((action, next_at))
                if len(taken) >= limit:
                    break
            conn.executemany("UPDATE outbox SET owner = ?, lease_until = ? WHERE id = ?",
                             [(self.owner, max(t, n) + self.lease_s, a.id) for a, n in taken])
            out["taken"] = taken
            return []

        self._write_sync(prepare)
        return list(out.get("taken", []))

    def retry_dead(self, ids: Sequence[str] = ()) -> int:
        """Make dead rows (all, or those in ``ids``) pending again with a fresh attempt count."""
        out: dict[str, int] = {}
        now = time.time()

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if ids:
                n = 0
                for i in ids:
                    n += conn.execute("UPDATE outbox SET status = 'pending', attempts = 0, next_at = ?, owner = NULL, "
                                      "lease_until = 0, done_at = NULL WHERE id = ? AND status = 'dead'",
                                      (now, i)).rowcount
            else:
                n = conn.execute("UPDATE outbox SET status = 'pending', attempts = 0, next_at = ?, owner = NULL, "
                                 "lease_until = 0, done_at = NULL WHERE status = 'dead'", (now,)).rowcount
            out["n"] = n
            return []

        self._write_sync(prepare)
        return out.get("n", 0)

    def purge(self, older_than: float) -> int:
        """Delete delivered and dead rows finished before ``older_than`` (epoch seconds)."""
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out["n"] = conn.execute("DELETE FROM outbox WHERE status != 'pending' AND done_at < ?",
                                    (older_than,)).rowcount
            return []

        self._write_sync(prepare)
        return out.get("n", 0)

    # ----------------------------------------------------------------- reads
    def get(self, action_id: str) -> OutboxRow | None:
        """One row by action id."""
        row = self.store.reader().execute(f"SELECT {_ROW} FROM outbox WHERE id = ?", (action_id,)).fetchone()
        return None if row is None else _row(row)

    def list(self, status: str | None = None, limit: int = 100) -> list[OutboxRow]:
        """Rows, newest first, optionally of one status."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        rows = self.store.reader().execute(f"SELECT {_ROW} FROM outbox {where} ORDER BY created DESC LIMIT ?",
                                           (*args, max(1, limit))).fetchall()
        return [_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        rows = self.store.reader().execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        return {s: 0 for s in STATUSES} | {s: int(n) for s, n in rows}

    # ----------------------------------------------------------------- plumbing
    def _write(self, prepare: Write, done: Done | None) -> None:
        self._writes.put(prepare, done)

    def _write_sync(self, prepare: Callable[[sqlite3.Connection], list[dict[str, Any]]]) -> None:
        self.store.append_sync([], prepare=prepare)


_ROW = "body, status, attempts, next_at, owner, lease_until, last_error, done_at"


def _row(r: Sequence[Any]) -> OutboxRow:
    action = ResponseAction.from_dict(orjson.loads(r[0])).with_attempts(int(r[2]))
    return OutboxRow(action, r[1], int(r[2]), float(r[3]), r[4], float(r[5]), r[6], r[7])


def _exec(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    conn.execute(sql, args)
    return []


def _execmany(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    conn.executemany(sql, rows)
    return []


class SessionFlags:
    """Per-session flags with an expiry (quarantine, block, confirmation required), shared by all workers.

    :meth:`set` takes effect in this process at once and in every process once committed (group commit,
    milliseconds); :meth:`active` reads this process's recent flags first, then the table.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._local: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._writes = Coalescer(store)
        _ensure_schema(store)

    def set(self, session_id: str, flag: str, until: float, *, reason: str = "", action_id: str | None = None,
            wait: bool = False) -> None:
        """Raise ``flag`` on the session until ``until`` (epoch seconds); a later expiry wins over an earlier one."""
        if flag not in FLAGS:
            raise ValueError(f"flag must be one of {', '.join(FLAGS)}")
        now = time.time()
        with self._lock:
            key = (session_id, flag)
            self._local[key] = max(until, self._local.get(key, 0.0))
            if len(self._local) > 100_000:
                self._local = {k: u for k, u in self._local.items() if u > now}
        args = (session_id, flag, until, now, reason[:200], action_id)

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.execute("INSERT INTO session_flags(session_id, flag, until, ts, reason, action_id) "
                         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(session_id, flag) DO UPDATE SET "
                         "until = MAX(until, excluded.until), ts = excluded.ts, reason = excluded.reason, "
                         "action_id = excluded.action_id", args)
            return []

        if wait:
            self.store.append_sync([], prepare=prepare)
        else:
            self._writes.put(prepare)

    def clear(self, session_id: str, flag: str | None = None) -> int:
        """Lift one flag (or all) from a session now; the number of stored flags removed."""
        with self._lock:
            for key in [k for k in self._local if k[0] == session_id and (flag is None or k[1] == flag)]:
                del self._local[key]
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            if flag is None:
                out["n"] = conn.execute("DELETE FROM session_flags WHERE session_id = ?", (session_id,)).rowcount
            else:
                out["n"] = conn.execute("DELETE FROM session_flags WHERE session_id = ? AND flag = ?",
                                        (session_id, flag)).rowcount
            return []

        self.store.append_sync([], prepare=prepare)
        return out.get("n", 0)

    def active(self, session_id: str, now: float | None = None) -> dict[str, float]:
        """The session's unexpired flags: flag → until."""
        t = time.time() if now is None else now
        with self._lock:
            out = {f: u for (s, f), u in self._local.items() if s == session_id and u > t} if self._local else {}
        try:
            rows = self.store.reader().execute("SELECT flag, until FROM session_flags WHERE session_id = ? AND "
                                               "until > ?", (session_id, t)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"session flags cannot be read: {exc}") from None
        for f, u in rows:
            out[f] = max(u, out.get(f, 0.0))
        return out

    def quarantined_until(self, session_id: str, now: float | None = None) -> float | None:
        """When the session's quarantine ends, or None when it is not quarantined."""
        return self.active(session_id, now).get("quarantined")

    def purge(self, now: float | None = None) -> int:
        """Delete expired flags."""
        t = time.time() if now is None else now
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            out["n"] = conn.execute("DELETE FROM session_flags WHERE until <= ?", (t,)).rowcount
            return []

        self.store.append_sync([], prepare=prepare)
        with self._lock:
            self._local = {k: u for k, u in self._local.items() if u > t}
        return out.get("n", 0)

