"""Attack memory tables in the store's SQLite file: exemplars, a change log, the review queue, reflexion log.

Every change goes through the store's writer (:meth:`SQLiteStore.append_sync` with ``prepare``), so the
table rows and a chained admin record (``memory_added``, ``memory_removed``, ``review_submitted`` …)
commit in one transaction: every memory change is audited, and nothing is lost on restart.

Tables (created on first use):

- ``memory_exemplars``: id, namespace (tenant; ``global`` for the shipped seed), kind ``attack|benign``,
  category, source, added_by, ts, status ``active|removed``, embedding (int8 codes), excerpt (redacted),
  text (only when the deployment stores raw text), text_hash, note, model.
- ``memory_changes``: an append-only log (seq, exemplar id, op ``add|remove``); workers poll its MAX(seq)
  to pick up changes made by other processes.
- ``memory_reviews``: feedback from ``detector``-role keys waiting for an analyst (``pending`` →
  ``accepted|rejected``). A pending review never affects verdicts.
- ``memory_reflexion``: one row per detection outcome that received feedback: the verdict, the label,
  whether the verdict was right, and which detectors spoke.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Any

import numpy as np
import orjson

from aimds.store.sqlite import SQLiteStore, new_id

KINDS = ("attack", "benign")
GLOBAL = "global"
SEED_META_KEY = "memory_seed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memory_exemplars (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    namespace TEXT NOT NULL,
    kind TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    added_by TEXT NOT NULL DEFAULT '',
    ts REAL NOT NULL,
    status TEXT NOT NULL,
    embedding BLOB NOT NULL,
    excerpt TEXT NOT NULL DEFAULT '',
    text TEXT,
    text_hash TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS memory_exemplars_ns ON memory_exemplars(namespace, kind, status);
CREATE TABLE IF NOT EXISTS memory_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    exemplar_id TEXT NOT NULL,
    op TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS memory_reviews (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    submitted_by TEXT NOT NULL,
    label TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    event_id TEXT,
    namespace TEXT NOT NULL,
    excerpt TEXT NOT NULL DEFAULT '',
    text TEXT,
    text_hash TEXT NOT NULL DEFAULT '',
    embedding BLOB NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_ts REAL,
    exemplar_id TEXT
);
CREATE INDEX IF NOT EXISTS memory_reviews_status ON memory_reviews(status, ts);
CREATE TABLE IF NOT EXISTS memory_reflexion (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    event_id TEXT,
    label TEXT NOT NULL,
    verdict_action TEXT,
    correct INTEGER,
    error TEXT NOT NULL,
    deciders TEXT NOT NULL DEFAULT '[]',
    rules TEXT NOT NULL DEFAULT '[]',
    category TEXT NOT NULL DEFAULT '',
    actor TEXT NOT NULL DEFAULT ''
);
"""

_EX_COLS = ("rid", "id", "namespace", "kind", "category", "source", "added_by", "ts", "status", "excerpt", "text",
            "text_hash", "note", "model")


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One stored exemplar (without its embedding)."""

    rid: int
    id: str
    namespace: str
    kind: str
    category: str
    source: str
    added_by: str
    ts: float
    status: str
    excerpt: str
    text: str | None
    text_hash: str
    note: str
    model: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no embedding, no rid)."""
        d = asdict(self)
        d.pop("rid")
        if d["text"] is None:
            d.pop("text")
        return d


@dataclass(frozen=True, slots=True)
class NewExemplar:
    """What :meth:`MemoryStore.add` needs for one exemplar."""

    kind: str
    embedding: np.ndarray          # int8 codes, shape [dim]
    namespace: str = GLOBAL
    category: str = ""
    source: str = "feedback"
    excerpt: str = ""
    text: str | None = None
    text_hash: str = ""
    note: str = ""
    model: str = ""
    id: str | None = None


def text_hash(text: str) -> str:
    """SHA-256 of the text (used to find an exemplar again; not a secret)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class MemoryStore:
    """The memory tables of one :class:`SQLiteStore` (same file, same writer, same audit chain)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        store.ensure_schema(_SCHEMA)

    def _read(self) -> sqlite3.Connection:
        return self.store.reader()

    # ----------------------------------------------------------------- exemplars
    def add(self, items: Sequence[NewExemplar], actor: str, *, reason: str = "feedback",
            extra: dict[str, Any] | None = None) -> list[str]:
        """Insert active exemplars with one chained ``memory_added`` record; returns their ids."""
        for it in items:
            if it.kind not in KINDS:
                raise ValueError(f"kind must be one of {KINDS}, got {it.kind!r}")
        now = time.time()
        ids = [it.id or new_id("mem") for it in items]

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.executemany(
                "INSERT INTO memory_exemplars(id, namespace, kind, category, source, added_by, ts, status, embedding,"
                " excerpt, text, text_hash, note, model) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)",
                [(i, it.namespace, it.kind, it.category, it.source, actor, now,
                  np.asarray(it.embedding, dtype=np.int8).tobytes(), it.excerpt, it.text, it.text_hash, it.note,
                  it.model) for i, it in zip(ids, items, strict=True)])
            conn.executemany("INSERT INTO memory_changes(exemplar_id, op, ts) VALUES (?, 'add', ?)",
                             [(i, now) for i in ids])
            summary = ids if len(ids) <= 20 else [*ids[:20], f"… {len(ids) - 20} more"]
            return [{"id": new_id("adm"), "kind": "admin", "action": "memory_added", "ts": now, "actor": actor,
                     "reason": reason, "count": len(ids), "targets": summary,
                     "kinds": sorted({it.kind for it in items}), **(extra or {})}]

        if items:
            self.store.append_sync([], prepare=prepare)
        return ids

    def remove(self, exemplar_id: str, actor: str, note: str = "") -> bool:
        """Mark an exemplar removed (kept for the record; reversible by re-import); audited."""
        found: dict[str, bool] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            cur = conn.execute("UPDATE memory_exemplars SET status = 'removed' WHERE id = ? AND status = 'active'",
                               (exemplar_id,))
            found["ok"] = cur.rowcount == 1
            if not found["ok"]:
                return []
            conn.execute("INSERT INTO memory_changes(exemplar_id, op, ts) VALUES (?, 'remove', ?)", (exemplar_id, now))
            return [{"id": new_id("adm"), "kind": "admin", "action": "memory_removed", "ts": now, "actor": actor,
                     "target": exemplar_id, "note": note}]

        self.store.append_sync([], prepare=prepare)
        return found.get("ok", False)

    def restore(self, exemplar_id: str, actor: str) -> bool:
        """Re-activate a removed exemplar (audited)."""
        found: dict[str, bool] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            now = time.time()
            cur = conn.execute("UPDATE memory_exemplars SET status = 'active' WHERE id = ? AND status = 'removed'",
                               (exemplar_id,))
            found["ok"] = cur.rowcount == 1
            if not found["ok"]:
                return []
            conn.execute("INSERT INTO memory_changes(exemplar_id, op, ts) VALUES (?, 'add', ?)", (exemplar_id, now))
            return [{"id": new_id("adm"), "kind": "admin", "action": "memory_restored", "ts": now, "actor": actor,
                     "target": exemplar_id}]

        self.store.append_sync([], prepare=prepare)
        return found.get("ok", False)

    def get(self, exemplar_id: str) -> Exemplar | None:
        """An exemplar by id (any status)."""
        row = self._read().execute(f"SELECT {', '.join(_EX_COLS)} FROM memory_exemplars WHERE id = ?",
                                   (exemplar_id,)).fetchone()
        return None if row is None else Exemplar(*row)

    def list(self, *, namespace: str | None = None, kind: str | None = None, status: str | None = "active",
             source: str | None = None, limit: int = 100,
             cursor: int | None = None) -> tuple[list[Exemplar], int | None]:
        """Exemplars, newest first, with a cursor for the next page."""
        where, args = ["1 = 1"], []
        for col, val in (("namespace", namespace), ("kind", kind), ("status", status), ("source", source)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if cursor is not None:
            where.append("rid < ?")
            args.append(cursor)
        rows = self._read().execute(
            f"SELECT {', '.join(_EX_COLS)} FROM memory_exemplars WHERE {' AND '.join(where)} ORDER BY rid DESC LIMIT ?",
            (*args, limit + 1)).fetchall()
        items = [Exemplar(*r) for r in rows[:limit]]
        return items, (items[-1].rid if len(rows) > limit else None)

    def count(self, status: str = "active") -> dict[str, int]:
        """Exemplar counts per kind."""
        rows = self._read().execute("SELECT kind, COUNT(*) FROM memory_exemplars WHERE status = ? GROUP BY kind",
                                    (status,)).fetchall()
        return {k: int(n) for k, n in rows}

    def active_vectors(self, model: str | None = None) -> Iterator[tuple[int, str, str, str, str, str, bytes]]:
        """(rid, id, namespace, kind, category, source, embedding) of every active exemplar.

        With ``model``, only exemplars embedded by that model (or with no model recorded): vectors from
        another embedder are not comparable and must not enter the index (see :meth:`stale`).
        """
        conn = self.store._connect()
        try:
            sql = "SELECT rid, id, namespace, kind, category, source, embedding FROM memory_exemplars" \
                  " WHERE status = 'active'"
            args: tuple[str, ...] = ()
            if model is not None:
                sql += " AND (model = ? OR model = '')"
                args = (model,)
            yield from conn.execute(sql + " ORDER BY rid", args)
        finally:
            conn.close()

    def stale(self, model: str) -> dict[str, int]:
        """Active exemplars embedded by another model than ``model``, per model (not searched)."""
        rows = self._read().execute(
            "SELECT model, COUNT(*) FROM memory_exemplars WHERE status = 'active' AND model != '' AND model != ?"
            " GROUP BY model", (model,)).fetchall()
        return {m: int(n) for m, n in rows}

    def rows_by_id(self, ids: Sequence[str]) -> list[tuple[int, str, str, str, str, str, bytes, str, str]]:
        """(rid, id, namespace, kind, category, source, embedding, status, model) of the given exemplars."""
        if not ids:
            return []
        marks = ", ".join("?" * len(ids))
        return self._read().execute(
            "SELECT rid, id, namespace, kind, category, source, embedding, status, model FROM memory_exemplars"
            f" WHERE id IN ({marks})", tuple(ids)).fetchall()

    def head(self) -> int:
        """The latest change sequence number (0 when none)."""
        row = self._read().execute("SELECT MAX(seq) FROM memory_changes").fetchone()
        return int(row[0] or 0)

    def changes_since(self, seq: int) -> list[tuple[int, str, str]]:
        """(seq, exemplar id, op) after ``seq``, in order."""
        return self._read().execute("SELECT seq, exemplar_id, op FROM memory_changes WHERE seq > ? ORDER BY seq",
                                    (seq,)).fetchall()

    # ----------------------------------------------------------------- seed
    def seed_once(self, actor: str = "install") -> int:
        """Load the shipped seed exemplars once per data directory and seed version; returns how many were written.

        When the shipped seed comes from another embedder than the one this directory was seeded with (a
        new model release), the seed rows are re-embedded in place (same ids; a seed exemplar an admin
        removed stays removed) and seed rows the new seed no longer has are removed, in one audited
        transaction. Feedback exemplars keep their vectors; those from the old embedder are reported by
        :meth:`stale` and left out of the index.
        """
        row = self._read().execute("SELECT value FROM meta WHERE key = ?", (SEED_META_KEY,)).fetchone()
        seed = load_seed()
        if seed is None or (row and row[0] == seed[4]):
            return 0
        codes, ids, cats, sources, version = seed
        now = time.time()

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            cur = conn.execute("SELECT value FROM meta WHERE key = ?", (SEED_META_KEY,)).fetchone()
            if cur and cur[0] == version:
                return []  # another process seeded first
            conn.executemany(
                "INSERT INTO memory_exemplars(id, namespace, kind, category, source, added_by, ts, status,"
                " embedding, model) VALUES (?, ?, 'attack', ?, ?, ?, ?, 'active', ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET embedding = excluded.embedding, model = excluded.model"
                " WHERE memory_exemplars.source LIKE 'seed:%'",
                [(str(i), GLOBAL, str(c), f"seed:{s}", actor, now, codes[k].tobytes(), version)
                 for k, (i, c, s) in enumerate(zip(ids, cats, sources, strict=True))])
            dropped = conn.execute(
                "UPDATE memory_exemplars SET status = 'removed' WHERE source LIKE 'seed:%' AND status = 'active'"
                " AND model != ?", (version,)).rowcount if cur else 0
            conn.execute("INSERT INTO memory_changes(exemplar_id, op, ts) VALUES ('*seed*', 'reload', ?)", (now,))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (SEED_META_KEY, version))
            rec = {"id": new_id("adm"), "kind": "admin", "action": "memory_seeded" if not cur else "memory_reseeded",
                   "ts": now, "actor": actor, "count": len(ids), "model": version}
            if cur:
                rec.update({"previous_model": cur[0], "removed": dropped})
            return [rec]

        self.store.append_sync([], prepare=prepare)
        return len(ids)

    # ----------------------------------------------------------------- review queue
    def submit_review(self, *, label: str, embedding: np.ndarray, namespace: str, submitted_by: str,
                      category: str = "", note: str = "", event_id: str | None = None, excerpt: str = "",
                      text: str | None = None, text_hash_: str = "", model: str = "") -> str:
        """Queue a submission for review (audited); it has no effect until accepted."""
        rid = new_id("rev")
        now = time.time()

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.execute(
                "INSERT INTO memory_reviews(id, ts, submitted_by, label, category, note, event_id, namespace, excerpt,"
                " text, text_hash, embedding, model, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                (rid, now, submitted_by, label, category, note, event_id, namespace, excerpt, text, text_hash_,
                 np.asarray(embedding, dtype=np.int8).tobytes(), model))
            return [{"id": new_id("adm"), "kind": "admin", "action": "review_submitted", "ts": now,
                     "actor": submitted_by, "target": rid, "label": label, "event_id": event_id}]

        self.store.append_sync([], prepare=prepare)
        return rid

    def list_reviews(self, status: str | None = "pending", limit: int = 100) -> list[dict[str, Any]]:
        """Reviews, oldest first (no embeddings)."""
        where = "WHERE status = ?" if status else ""
        rows = self._read().execute(
            "SELECT id, ts, submitted_by, label, category, note, event_id, namespace, excerpt, status, decided_by,"
            f" decided_ts, exemplar_id FROM memory_reviews {where} ORDER BY ts LIMIT ?",
            ((status, limit) if status else (limit,))).fetchall()
        keys = ("id", "ts", "submitted_by", "label", "category", "note", "event_id", "namespace", "excerpt", "status",
                "decided_by", "decided_ts", "exemplar_id")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def decide_review(self, review_id: str, decision: str, actor: str) -> dict[str, Any] | None:
        """Accept (the submission becomes an exemplar) or reject a pending review; None if not pending."""
        if decision not in ("accept", "reject"):
            raise ValueError("decision must be 'accept' or 'reject'")
        out: dict[str, Any] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            row = conn.execute(
                "SELECT label, category, note, namespace, excerpt, text, text_hash, embedding, model, event_id,"
                " submitted_by FROM memory_reviews WHERE id = ? AND status = 'pending'", (review_id,)).fetchone()
            if row is None:
                return []
            now = time.time()
            label, category, note, ns, exc, text, th, emb, model, event_id, by = row
            ex_id = None
            if decision == "accept":
                ex_id = new_id("mem")
                conn.execute(
                    "INSERT INTO memory_exemplars(id, namespace, kind, category, source, added_by, ts, status,"
                    " embedding, excerpt, text, text_hash, note, model) VALUES (?, ?, ?, ?, 'review', ?, ?, 'active',"
                    " ?, ?, ?, ?, ?, ?)", (ex_id, ns, label, category, f"{by} (accepted by {actor})", now, emb, exc,
                                           text, th, note, model))
                conn.execute("INSERT INTO memory_changes(exemplar_id, op, ts) VALUES (?, 'add', ?)", (ex_id, now))
            status = "accepted" if decision == "accept" else "rejected"
            conn.execute("UPDATE memory_reviews SET status = ?, decided_by = ?, decided_ts = ?, exemplar_id = ?"
                         " WHERE id = ?", (status, actor, now, ex_id, review_id))
            out.update({"id": review_id, "status": status, "exemplar_id": ex_id, "label": label,
                        "event_id": event_id, "category": category})
            return [{"id": new_id("adm"), "kind": "admin", "action": f"review_{status}", "ts": now, "actor": actor,
                     "target": review_id, "exemplar_id": ex_id}]

        self.store.append_sync([], prepare=prepare)
        return out or None

    # ----------------------------------------------------------------- reflexion log
    def log_outcome(self, *, label: str, actor: str, event: dict[str, Any] | None,
                    category: str = "") -> dict[str, Any]:
        """Record how a detection fared once feedback arrived (the reflexion log)."""
        action = event.get("action") if event else None
        rules = list(event.get("rules", [])) if event else []
        deciders = sorted({r.split(":", 1)[0] for r in rules})
        flagged = None if action is None else action != "allow"
        if flagged is None:
            correct, error = None, "unknown"
        elif label == "attack":
            correct, error = flagged, ("none" if flagged else "false_negative")
        else:
            correct, error = not flagged, ("none" if not flagged else "false_positive")
        row = {"id": new_id("rfx"), "ts": time.time(), "event_id": event.get("id") if event else None,
               "label": label, "verdict_action": action, "correct": correct, "error": error,
               "deciders": deciders, "rules": rules, "category": category or ",".join(event.get("categories", [])
                                                                                        if event else []),
               "actor": actor}
        conn_row = (row["id"], row["ts"], row["event_id"], label, action,
                    None if correct is None else int(correct), error, orjson.dumps(deciders).decode(),
                    orjson.dumps(rules).decode(), row["category"], actor)

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.execute("INSERT INTO memory_reflexion(id, ts, event_id, label, verdict_action, correct, error,"
                         " deciders, rules, category, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", conn_row)
            return []

        self.store.append_sync([], prepare=prepare)
        return row

    def reflexion(self, since: float | None = None) -> list[dict[str, Any]]:
        """Reflexion rows, oldest first."""
        rows = self._read().execute(
            "SELECT id, ts, event_id, label, verdict_action, correct, error, deciders, rules, category, actor"
            " FROM memory_reflexion WHERE ts >= ? ORDER BY ts", (since or 0.0,)).fetchall()
        keys = ("id", "ts", "event_id", "label", "verdict_action", "correct", "error", "deciders", "rules", "category",
                "actor")
        out = []
        for r in rows:
            d = dict(zip(keys, r, strict=True))
            d["deciders"], d["rules"] = orjson.loads(d["deciders"]), orjson.loads(d["rules"])
            d["correct"] = None if d["correct"] is None else bool(d["correct"])
            out.append(d)
        return out

    # ----------------------------------------------------------------- export / import
    def export(self, include_removed: bool = True) -> Iterator[dict[str, Any]]:
        """Every exemplar with its embedding (hex int8), for ``aimds memory export``."""
        conn = self.store._connect()
        try:
            where = "" if include_removed else "WHERE status = 'active'"
            for row in conn.execute(f"SELECT {', '.join(_EX_COLS)}, embedding FROM memory_exemplars {where}"
                                    " ORDER BY rid"):
                d = Exemplar(*row[:-1]).to_dict()
                d["embedding"] = bytes(row[-1]).hex()
                yield d
        finally:
            conn.close()

    def import_(self, items: Sequence[dict[str, Any]], actor: str) -> dict[str, int]:
        """Insert exported exemplars whose id is unknown; re-activate known removed ones when active in the file."""
        new: list[NewExemplar] = []
        restored = skipped = 0
        for d in items:
            known = self.get(str(d["id"]))
            if known is not None:
                if known.status == "removed" and d.get("status", "active") == "active":
                    restored += int(self.restore(known.id, actor))
                else:
                    skipped += 1
                continue
            if d.get("status", "active") != "active":
                skipped += 1
                continue
            new.append(NewExemplar(kind=d["kind"], embedding=np.frombuffer(bytes.fromhex(d["embedding"]), np.int8),
                                   namespace=d.get("namespace", GLOBAL), category=d.get("category", ""),
                                   source=d.get("source", "import"), excerpt=d.get("excerpt", ""),
                                   text=d.get("text"), text_hash=d.get("text_hash", ""), note=d.get("note", ""),
                                   model=d.get("model", ""), id=str(d["id"])))
        self.add(new, actor, reason="import")
        return {"added": len(new), "restored": restored, "skipped": skipped}


def load_seed() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str] | None:
    """The shipped seed (codes, ids, categories, sources, model version), or None when not built."""
    res = resources.files("aimds").joinpath("data/memory/seed.npz")
    if not res.is_file():
        return None
    with res.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        meta = orjson.loads(str(z["meta"]))
        return (z["codes"].astype(np.int8), z["ids"], z["categories"], z["sources"], str(meta.get("model", "")))
