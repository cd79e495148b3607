"""The embedded default store: one SQLite file (WAL) in the data directory, written by group commit.

Writes go through one writer thread per process: concurrent requests queue their records, the writer
drains the queue into one transaction (``BEGIN IMMEDIATE`` so that several worker processes serialise
on SQLite's write lock), chains the records (:mod:`aimds.store.audit`), commits with
``synchronous=FULL`` and only then reports them durable. One fsync covers a whole batch, so
durability does not cost throughput.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from aimds.errors import AIMDSError, ConfigError
from aimds.store.audit import (
    GENESIS,
    PUBLIC_KEY_FILE,
    ChainRow,
    Checkpoint,
    Signer,
    VerifyReport,
    canonical_json,
    chain_hash,
    checkpoint_message,
    key_id,
    load_public_key,
    verify_chain,
)
from aimds.store.base import ROLES, ApiKey, Done, EventQuery, EventStore, Page

log = logging.getLogger("aimds.store")

DB_FILE = "aimds.db"
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    action TEXT,
    session_id TEXT,
    key_id TEXT,
    categories TEXT NOT NULL DEFAULT '',
    body BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_kind_ts ON records(kind, ts);
CREATE INDEX IF NOT EXISTS records_session ON records(session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_action ON records(action, seq);
CREATE TABLE IF NOT EXISTS checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    ts REAL NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_COLUMNS = ("id", "kind", "ts", "action", "session_id", "key_id", "categories")
KEY_PREFIX = "aimds"


class StoreError(AIMDSError):
    """The store could not complete an operation."""


def columns_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The queryable columns derived from a record (what :func:`verify_chain` checks them against)."""
    cats = record.get("categories") or []
    return {"id": record.get("id"), "kind": record.get("kind"), "ts": record.get("ts"),
            "action": record.get("action"), "session_id": record.get("session_id"),
            "key_id": record.get("key_id"), "categories": "".join(f",{c}" for c in cats) + ("," if cats else "")}


def new_id(prefix: str) -> str:
    """A time-ordered random id, e.g. ``evt_018f3a2b4c5d6e7f8a9b0c1d``."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def hash_secret(secret: str) -> str:
    """SHA-256 of an API key's secret part (keys are 256-bit random, so a fast hash is enough)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_key(key: str) -> tuple[str, str] | None:
    """Split ``aimds_<id>_<secret>`` into (id, secret); None when the shape is wrong."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


Prepare = Callable[[sqlite3.Connection], list[dict[str, Any]]]


@dataclass
class _Item:
    records: list[dict[str, Any]]
    done: Done
    prepare: Prepare | None = None      # runs inside the transaction before chaining (keys, purge)
    n: int = field(default=0)


_STOP = object()


class SQLiteStore(EventStore):
    """SQLite (WAL) event store with group commit and a signed hash chain."""

    def __init__(self, data_dir: Path | str, *, checkpoint_every: int = 1000, synchronous: str = "FULL",
                 max_batch: int = 1024, queue_max: int = 100_000, signing_key: Path | None = None,
                 busy_timeout_s: float = 30.0, read_only: bool = False) -> None:
        """Open (creating if needed) the store in ``data_dir``.

        ``read_only``: no writer thread, no key created, nothing signed or written — what verifiers and
        listings use, so that inspecting a store after a crash cannot sign (bless) its unsigned tail.
        """
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ConfigError("synchronous must be FULL, NORMAL or EXTRA")
        if checkpoint_every <= 0:
            raise ConfigError("checkpoint_every must be positive")
        self.data_dir = Path(data_dir)
        self.read_only = read_only
        self.path = self.data_dir / DB_FILE
        if read_only and not self.path.exists():
            raise StoreError(f"no AIMDS store at {self.data_dir}")
        if not read_only:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.checkpoint_every = checkpoint_every
        self.synchronous = synchronous.upper()
        self.max_batch = max_batch
        self.busy_timeout_s = busy_timeout_s
        self.signer: Signer | None = None if read_only else Signer.load_or_create(self.data_dir, signing_key)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self._local = threading.local()
        self._closed = False
        self.stats = {"batches": 0, "records": 0, "last_batch": 0, "write_seconds": 0.0}
        self.on_commit: Callable[[int, float], None] | None = None  # (records, seconds) for metrics
        self._writer = threading.Thread(target=self._run, name="aimds-store-writer", daemon=True)
        if read_only:
            return
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        self._writer.start()

    # ----------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.busy_timeout_s,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            return conn
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
        return conn

    def ensure_schema(self, sql: str) -> None:
        """Create a component's tables (idempotent ``CREATE … IF NOT EXISTS`` script) in this store's file."""
        if self.read_only:
            return
        conn = self._connect()
        try:
            conn.executescript(sql)
        finally:
            conn.close()

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (WAL readers never block the writer)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    # ----------------------------------------------------------------- writes
    @property
    def queue_depth(self) -> int:
        """Records waiting for the writer."""
        return self._queue.qsize()

    def append(self, records: Sequence[Mapping[str, Any]], done: Done, prepare: Prepare | None = None) -> None:
        """Queue records for the next group commit; ``done`` is called from the writer thread."""
        if self._closed or self.read_only:
            raise StoreError("the store is closed" if self._closed else "the store is open read-only")
        recs = [dict(r) for r in records]
        for r in recs:
            for key in ("id", "kind", "ts"):
                if key not in r:
                    raise StoreError(f"record lacks {key!r}")
        try:
            self._queue.put(_Item(recs, done, prepare, len(recs)), timeout=self.busy_timeout_s)
        except queue.Full:
            raise StoreError("the store's write queue is full") from None

    def append_sync(self, records: Sequence[Mapping[str, Any]], prepare: Prepare | None = None
                    ) -> list[dict[str, Any]]:
        """Append and block until the records are durable."""
        box: dict[str, Any] = {}
        ready = threading.Event()

        def done(stored: list[dict[str, Any]] | None, error: BaseException | None) -> None:
            box["stored"], box["error"] = stored, error
            ready.set()

        self.append(records, done, prepare)
        if not ready.wait(self.busy_timeout_s * 2):
            raise StoreError("timed out waiting for the store to commit")
        if box["error"] is not None:
            raise StoreError(f"write failed: {box['error']}") from box["error"]
        return box["stored"]

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch = [first]
                total = first.n
                stop = False
                while total < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    batch.append(nxt)
                    total += nxt.n
                self._commit(conn, batch)
                if stop:
                    break
        finally:
            try:
                self._checkpoint(conn, only_if_new=True)
            except Exception:  # pragma: no cover - best effort at shutdown
                log.exception("final checkpoint failed")
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        t0 = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                seq, prev = (row[0], row[1]) if row else (0, GENESIS)
                outs: list[list[dict[str, Any]]] = []
                insert = (f"INSERT INTO records(seq, {', '.join(_COLUMNS)}, body, prev_hash, hash) "
                          f"VALUES ({', '.join('?' * (len(_COLUMNS) + 4))})")
                for item in batch:
                    # prepare() sees every row inserted before it in this transaction
                    records = item.records + (item.prepare(conn) if item.prepare else [])
                    if item.prepare is not None:
                        row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                        seq, prev = (row[0], row[1]) if row else (seq, prev)
                    stored, rows = [], []
                    for rec in records:
                        seq += 1
                        rec = {**rec, "seq": seq}
                        body = canonical_json(rec)
                        digest = chain_hash(prev, body)
                        cols = columns_of(rec)
                        rows.append((seq, *[cols[c] for c in _COLUMNS], body, prev, digest))
                        prev = digest
                        stored.append(rec)
                        if seq % self.checkpoint_every == 0:
                            self._sign(conn, seq, digest)
                    conn.executemany(insert, rows)
                    outs.append(stored)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            log.error("store commit failed: %s", exc)
            for item in batch:
                _safe(item.done, None, exc)
            return
        elapsed = time.perf_counter() - t0
        n = sum(len(o) for o in outs)
        self.stats["batches"] += 1
        self.stats["records"] += n
        self.stats["last_batch"] = n
        self.stats["write_seconds"] += elapsed
        if self.on_commit is not None:
            _safe(self.on_commit, n, elapsed)
        for item, stored in zip(batch, outs, strict=True):
            _safe(item.done, stored, None)

    def _sign(self, conn: sqlite3.Connection, seq: int, head: str) -> None:
        assert self.signer is not None
        ts = time.time()
        sig = self.signer.sign(checkpoint_message(seq, head, ts))
        conn.execute("INSERT OR REPLACE INTO checkpoints(seq, hash, ts, key_id, signature) VALUES (?, ?, ?, ?, ?)",
                     (seq, head, round(ts, 6), self.signer.key_id, sig))

    def _checkpoint(self, conn: sqlite3.Connection, only_if_new: bool) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            if row is not None:
                last_cp = conn.execute("SELECT MAX(seq) FROM checkpoints").fetchone()[0]
                if not (only_if_new and last_cp == row[0]):
                    self._sign(conn, row[0], row[1])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def checkpoint(self) -> None:
        """Sign the current head now (through the writer, so it orders after queued writes)."""
        self.append_sync([], prepare=lambda conn: _sign_head(self, conn))

    # ----------------------------------------------------------------- reads
    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """A stored record by id (events and admin actions)."""
        row = self.reader().execute("SELECT body FROM records WHERE id = ?", (event_id,)).fetchone()
        return None if row is None else orjson.loads(row[0])

    def list_events(self, query: EventQuery) -> Page:
        """Events matching the filters, newest first."""
        where = ["kind = 'event'"]
        args: list[Any] = []
        if query.cursor is not None:
            where.append("seq < ?")
            args.append(query.cursor)
        if query.since is not None:
            where.append("ts >= ?")
            args.append(query.since)
        if query.until is not None:
            where.append("ts < ?")
            args.append(query.until)
        if query.action:
            where.append("action = ?")
            args.append(query.action)
        if query.session_id:
            where.append("session_id = ?")
            args.append(query.session_id)
        if query.category:
            where.append("instr(categories, ?) > 0")
            args.append(f",{query.category},")
        limit = max(1, min(query.limit, 1000))
        sql = f"SELECT seq, body FROM records WHERE {' AND '.join(where)} ORDER BY seq DESC LIMIT ?"
        rows = self.reader().execute(sql, (*args, limit + 1)).fetchall()
        items = [orjson.loads(b) for _, b in rows[:limit]]
        next_cursor = rows[limit - 1][0] if len(rows) > limit else None
        return Page(items, next_cursor)

    def count(self) -> int:
        """Number of stored records."""
        return int(self.reader().execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def ping(self) -> None:
        """Raise StoreError if the database cannot be read or the writer has stopped."""
        if self._closed or self.read_only or not self._writer.is_alive():
            raise StoreError("the store's writer is not running")
        try:
            self.reader().execute("SELECT 1 FROM meta LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"the store cannot be read: {exc}") from None

    # ----------------------------------------------------------------- audit
    def public_keys(self, extra: Sequence[Path] = ()) -> dict[str, Any]:
        """Public keys that may have signed checkpoints: this store's and any given PEM files."""
        keys: dict[str, Any] = {self.signer.key_id: self.signer.public_key} if self.signer else {}
        pub = self.data_dir / PUBLIC_KEY_FILE
        for path in [pub, *extra] if pub.exists() else list(extra):
            k = load_public_key(Path(path).read_bytes())
            keys[key_id(k)] = k
        return keys

    def iter_chain(self) -> Iterator[ChainRow]:
        """All records in sequence order, as the verifier reads them."""
        conn = self._connect()
        try:
            cur = conn.execute(f"SELECT seq, {', '.join(_COLUMNS)}, body, prev_hash, hash FROM records ORDER BY seq")
            for row in cur:
                cols = dict(zip(_COLUMNS, row[1:8], strict=True))
                body = row[8].encode("utf-8") if isinstance(row[8], str) else bytes(row[8])
                yield ChainRow(row[0], body, row[9], row[10], cols)
        finally:
            conn.close()

    def checkpoints(self) -> list[Checkpoint]:
        """All signed checkpoints."""
        rows = self.reader().execute("SELECT seq, hash, ts, key_id, signature FROM checkpoints ORDER BY seq")
        return [Checkpoint(*r) for r in rows.fetchall()]

    def anchors(self) -> dict[int, str]:
        """Purge anchors recorded in the chain: first kept seq → hash before it."""
        out = {}
        for (body,) in self.reader().execute(
                "SELECT body FROM records WHERE kind = 'admin' AND action = 'purge' ORDER BY seq"):
            rec = orjson.loads(body)
            out[int(rec["before_seq"])] = str(rec["anchor_hash"])
        return out

    def verify(self, extra_keys: Sequence[Path] = ()) -> VerifyReport:
        """Verify the whole chain and every checkpoint signature."""
        return verify_chain(self.iter_chain(), self.checkpoints(), self.public_keys(extra_keys), self.anchors(),
                            columns_of)

    def export(self) -> Iterator[dict[str, Any]]:
        """The chain with its checkpoints, for an external verifier (one JSON object per item)."""
        yield {"type": "header", "algorithm": "sha256-chain/ed25519", "genesis": GENESIS,
               "hash": "hex(SHA-256(prev_hash_hex_ascii || canonical_json(record)))",
               "canonical_json": "UTF-8, keys sorted, no whitespace",
               "checkpoint_message": "canonical_json({seq, hash, ts})",
               "public_keys": {k: pem.decode() for k, pem in _pems(self.public_keys()).items()}}
        for row in self.iter_chain():
            yield {"type": "record", "seq": row.seq, "prev_hash": row.prev_hash, "hash": row.hash,
                   "record": orjson.loads(row.body)}
        for cp in self.checkpoints():
            yield {"type": "checkpoint", **cp.to_dict()}

    # ----------------------------------------------------------------- retention
    def purge(self, older_than: float, actor: str) -> int:
        """Delete records older than ``older_than`` (epoch seconds), leaving a chained purge record."""
        counted: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            row = conn.execute("SELECT MIN(seq) FROM records WHERE ts >= ?", (older_than,)).fetchone()
            last = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            if last is None:
                counted["n"] = 0
                return []
            first_kept = row[0] if row[0] is not None else last[0] + 1
            before = conn.execute("SELECT hash FROM records WHERE seq = ?", (first_kept - 1,)).fetchone()
            n = conn.execute("SELECT COUNT(*) FROM records WHERE seq < ?", (first_kept,)).fetchone()[0]
            counted["n"] = n
            if n == 0:
                return []
            conn.execute("DELETE FROM records WHERE seq < ?", (first_kept,))
            conn.execute("DELETE FROM checkpoints WHERE seq < ?", (first_kept,))
            return [{"id": new_id("adm"), "kind": "admin", "action": "purge", "ts": time.time(), "actor": actor,
                     "before_seq": first_kept, "anchor_hash": before[0] if before else GENESIS, "deleted": n,
                     "older_than": older_than}]

        self.append_sync([], prepare=prepare)
        if counted.get("n"):
            self.append_sync([], prepare=lambda conn: _sign_head(self, conn))
        return counted.get("n", 0)

    # ----------------------------------------------------------------- keys
    def create_key(self, role: str, name: str, actor: str) -> tuple[ApiKey, str]:
        """Create a key; the secret is returned once and only its hash is stored."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        kid = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32).replace("_", "A")
        key = ApiKey(kid, role, name, time.time(), None, hash_secret(secret))

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.execute("INSERT INTO api_keys(id, secret_hash, role, name, created) VALUES (?, ?, ?, ?, ?)",
                         (key.id, key.secret_hash, key.role, key.name, key.created))
            return []

        record = {"id": new_id("adm"), "kind": "admin", "action": "key_created", "ts": key.created, "actor": actor,
                  "target": kid, "role": role, "name": name}
        self.append_sync([record], prepare=prepare)
        return key, f"{KEY_PREFIX}_{kid}_{secret}"

    def get_key(self, key_id: str) -> ApiKey | None:
        """A key record by id."""
        row = self.reader().execute(
            "SELECT id, role, name, created, revoked, secret_hash FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else ApiKey(*row)

    def list_keys(self) -> list[ApiKey]:
        """All key records, oldest first."""
        rows = self.reader().execute(
            "SELECT id, role, name, created, revoked, secret_hash FROM api_keys ORDER BY created").fetchall()
        return [ApiKey(*r) for r in rows]

    def revoke_key(self, key_id: str, actor: str) -> bool:
        """Revoke an active key (audited)."""
        found: dict[str, bool] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            cur = conn.execute("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (now, key_id))
            found["ok"] = cur.rowcount == 1
            if not found["ok"]:
                return []
            return [{"id": new_id("adm"), "kind": "admin", "action": "key_revoked", "ts": now, "actor": actor,
                     "target": key_id}]

        self.append_sync([], prepare=prepare)
        return found.get("ok", False)

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key matching ``key`` (constant-time comparison of the secret's hash), else None."""
        parsed = parse_key(key)
        kid, secret = parsed if parsed else ("", key)
        record = self.get_key(kid) if parsed else None
        expected = record.secret_hash if record else "0" * 64
        ok = hmac.compare_digest(hash_secret(secret), expected)
        if record is None or not ok or record.revoked is not None:
            return None
        return record

    def record_admin(self, action: str, actor: str, **fields: Any) -> dict[str, Any]:
        """Chain an admin action (config change …) and return the stored record."""
        rec = {"id": new_id("adm"), "kind": "admin", "action": action, "ts": time.time(), "actor": actor, **fields}
        return self.append_sync([rec])[0]

    # ----------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Drain the queue, sign a final checkpoint and stop the writer."""
        if self._closed:
            return
        self._closed = True
        if not self.read_only:
            self._queue.put(_STOP)
            self._writer.join(timeout=self.busy_timeout_s)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sign_head(store: SQLiteStore, conn: sqlite3.Connection) -> list[dict[str, Any]]:
    row = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    if row is not None:
        store._sign(conn, row[0], row[1])
    return []


def _pems(keys: Mapping[str, Any]) -> dict[str, bytes]:
    from aimds.store.audit import public_pem

    return {k: public_pem(v) for k, v in keys.items()}


def _safe(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a callback must never kill the writer
        log.exception("store callback failed")


def default_data_dir() -> Path:
    """``AIMDS_DATA_DIR``, else ``$XDG_DATA_HOME/aimds``, else ``~/.local/share/aimds``."""
    if os.environ.get("AIMDS_DATA_DIR"):
        return Path(os.environ["AIMDS_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "aimds"
