"""The audit chain detects every single-record tampering, at the record's position."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import orjson
import pytest

from aimds.store.audit import chain_hash
from aimds.store.sqlite import SQLiteStore, new_id

N = 40


def _fill(path: Path, n: int = N, checkpoint_every: int = 10) -> None:
    with SQLiteStore(path, checkpoint_every=checkpoint_every) as store:
        store.append_sync([{"id": new_id("evt"), "kind": "event", "ts": time.time(), "action": "allow",
                            "categories": ["jailbreak"] if i % 2 else [], "i": i} for i in range(n)])


def _verify(path: Path) -> dict:
    with SQLiteStore(path) as store:
        return store.verify().to_dict()


def _db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path / "aimds.db", isolation_level=None)


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    _fill(tmp_path)
    return tmp_path


def test_intact_chain_verifies(chain: Path) -> None:
    report = _verify(chain)
    assert report["ok"] and report["records"] == N and report["last_seq"] == N
    assert report["checkpoints"] >= 4 and report["unsigned_tail"] == 0  # close() signs the head


@pytest.mark.parametrize("seq", [1, 17, N])
def test_edited_body_is_found(chain: Path, seq: int) -> None:
    with _db(chain) as db:
        body = orjson.loads(db.execute("SELECT body FROM records WHERE seq = ?", (seq,)).fetchone()[0])
        body["action"] = "block"
        db.execute("UPDATE records SET body = ? WHERE seq = ?", (orjson.dumps(body, option=orjson.OPT_SORT_KEYS), seq))
    report = _verify(chain)
    assert not report["ok"] and report["break_seq"] == seq and report["problem"] == "edited"


def test_edited_column_is_found(chain: Path) -> None:
    with _db(chain) as db:
        db.execute("UPDATE records SET action = 'block' WHERE seq = 9")
    report = _verify(chain)
    assert (report["ok"], report["break_seq"], report["problem"]) == (False, 9, "edited")


@pytest.mark.parametrize("seq", [1, 23, N])
def test_deleted_record_is_found(chain: Path, seq: int) -> None:
    with _db(chain) as db:
        db.execute("DELETE FROM records WHERE seq = ?", (seq,))
    report = _verify(chain)
    assert not report["ok"] and report["break_seq"] == seq
    assert report["problem"] in ("deleted", "truncated")


def test_deleted_and_renumbered_record_is_found(chain: Path) -> None:
    with _db(chain) as db:
        db.execute("DELETE FROM records WHERE seq = 12")
        for seq in range(13, N + 1):
            db.execute("UPDATE records SET seq = ? WHERE seq = ?", (seq - 1, seq))
    report = _verify(chain)
    assert not report["ok"] and report["break_seq"] == 12 and report["problem"] == "deleted"


def test_inserted_record_with_a_valid_hash_is_found(chain: Path) -> None:
    with _db(chain) as db:
        for seq in range(N, 14, -1):
            db.execute("UPDATE records SET seq = ? WHERE seq = ?", (seq + 1, seq))
        prev = db.execute("SELECT hash FROM records WHERE seq = 14").fetchone()[0]
        forged = {"id": "evt_forged", "kind": "event", "ts": time.time(), "action": "allow", "categories": [],
                  "seq": 15, "session_id": None, "key_id": None}
        body = orjson.dumps(forged, option=orjson.OPT_SORT_KEYS)
        db.execute("INSERT INTO records(seq, id, kind, ts, action, session_id, key_id, categories, body, prev_hash,"
                   " hash) VALUES (15, 'evt_forged', 'event', ?, 'allow', NULL, NULL, '', ?, ?, ?)",
                   (forged["ts"], body, prev, chain_hash(prev, body)))
    report = _verify(chain)
    assert not report["ok"] and report["break_seq"] == 15 and report["problem"] == "inserted"


def test_swapped_records_are_found(chain: Path) -> None:
    with _db(chain) as db:
        db.execute("UPDATE records SET seq = -1 WHERE seq = 20")
        db.execute("UPDATE records SET seq = 20 WHERE seq = 21")
        db.execute("UPDATE records SET seq = 21 WHERE seq = -1")
    report = _verify(chain)
    assert not report["ok"] and report["break_seq"] == 20 and report["problem"] == "reordered"


def test_truncated_tail_past_a_checkpoint_is_found(chain: Path) -> None:
    with _db(chain) as db:
        db.execute("DELETE FROM records WHERE seq > 25")
    report = _verify(chain)
    assert not report["ok"] and report["problem"] == "truncated" and report["break_seq"] == 26


def test_rewritten_chain_fails_at_the_signed_checkpoint(chain: Path) -> None:
    """An attacker without the signing key who rehashes everything after an edit is caught by a checkpoint."""
    with _db(chain) as db:
        rows = db.execute("SELECT seq, body, prev_hash FROM records ORDER BY seq").fetchall()
        prev = None
        for seq, body, prev_hash in rows:
            rec = orjson.loads(body)
            if seq == 5:
                rec["action"] = "block"
            new_body = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
            prev = prev_hash if prev is None else prev
            digest = chain_hash(prev, new_body)
            db.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ?, action = ? WHERE seq = ?",
                       (new_body, prev, digest, rec["action"], seq))
            prev = digest
    report = _verify(chain)
    assert not report["ok"] and report["problem"] == "rewritten" and 5 <= report["break_seq"] <= 10


def test_forged_checkpoint_signature_is_found(chain: Path) -> None:
    with _db(chain) as db:
        db.execute("UPDATE checkpoints SET signature = ? WHERE seq = (SELECT MAX(seq) FROM checkpoints)",
                   ("00" * 64,))
    report = _verify(chain)
    assert not report["ok"] and report["problem"] == "bad_signature"


def test_purge_keeps_the_chain_verifiable_but_deleting_a_prefix_does_not(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path, checkpoint_every=5) as store:
        old = time.time() - 40 * 86400
        store.append_sync([{"id": new_id("evt"), "kind": "event", "ts": old, "action": "allow"} for _ in range(12)])
        store.append_sync([{"id": new_id("evt"), "kind": "event", "ts": time.time(), "action": "block"}
                           for _ in range(3)])
        assert store.purge(time.time() - 30 * 86400, actor="test") == 12
        report = store.verify()
        assert report.ok and report.first_seq == 13, report
    with _db(tmp_path) as db:
        db.execute("DELETE FROM records WHERE seq = 13")
    report = _verify(tmp_path)
    assert not report["ok"] and report["problem"] == "deleted"


def test_deleting_a_prefix_without_a_purge_record_is_found(chain: Path) -> None:
    with _db(chain) as db:
        db.execute("DELETE FROM records WHERE seq <= 3")
    report = _verify(chain)
    assert not report["ok"] and report["problem"] == "deleted" and report["break_seq"] == 1
