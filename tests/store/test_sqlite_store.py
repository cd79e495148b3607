"""The SQLite event store: durable group commit, queries, keys, several writer processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from aimds.errors import ConfigError
from aimds.store.base import EventQuery
from aimds.store.sqlite import SQLiteStore, new_id, parse_key


def _event(i: int, **fields: object) -> dict:
    return {"id": new_id("evt"), "kind": "event", "ts": time.time(), "action": "allow", "categories": [],
            "session_id": None, "i": i, **fields}


def test_records_survive_reopening(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        stored = store.append_sync([_event(i) for i in range(5)])
    assert [r["seq"] for r in stored] == [1, 2, 3, 4, 5]
    with SQLiteStore(tmp_path) as store:
        assert store.get_event(stored[3]["id"])["i"] == 3
        assert store.get_event("evt_missing") is None


def test_concurrent_appends_are_batched_and_all_kept(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    ids: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(50):
            rec = store.append_sync([_event(i, worker=k)])[0]
            with lock:
                ids.append(rec["id"])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 400 and store.count() == 400
    assert store.stats["batches"] < 400  # group commit: fewer transactions than records
    assert store.verify().ok
    store.close()


def test_filters_and_cursor_pagination(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        store.append_sync([_event(i, action="block" if i % 3 == 0 else "allow",
                                  categories=["jailbreak"] if i % 4 == 0 else [],
                                  session_id=f"s{i % 2}") for i in range(30)])
        seen, cursor = [], None
        while True:
            page = store.list_events(EventQuery(cursor=cursor, limit=7))
            seen += [r["i"] for r in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == list(range(29, -1, -1))
        assert {r["i"] for r in store.list_events(EventQuery(action="block", limit=100)).items} == set(range(0, 30, 3))
        assert {r["i"] for r in store.list_events(EventQuery(category="jailbreak", limit=100)).items} == \
            set(range(0, 30, 4))
        assert {r["i"] for r in store.list_events(EventQuery(session_id="s1", limit=100)).items} == \
            set(range(1, 30, 2))
        assert store.list_events(EventQuery(since=time.time() + 60)).items == []
        assert store.list_events(EventQuery(category="prompt_leak")).items == []


def test_keys_are_hashed_checked_and_revocable(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as store:
        key, secret = store.create_key("analyst", "ops", actor="test")
        assert parse_key(secret) is not None
        assert store.authenticate(secret).role == "analyst"
        assert store.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
        assert store.authenticate("not-a-key") is None
        assert store.revoke_key(key.id, actor="test") and not store.revoke_key(key.id, actor="test")
        assert store.authenticate(secret) is None
        with pytest.raises(ConfigError):
            store.create_key("root", "", actor="test")
        actions = [r["action"] for r in store.list_events(EventQuery()).items]
        assert actions == []  # admin actions are chained but are not detection events
        assert store.verify().records == 2
    raw = (tmp_path / "aimds.db").read_bytes() + (tmp_path / "aimds.db-wal").read_bytes() \
        if (tmp_path / "aimds.db-wal").exists() else (tmp_path / "aimds.db").read_bytes()
    assert parse_key(secret)[1].encode() not in raw


def _write_many(path: str, k: int) -> None:
    with SQLiteStore(Path(path), checkpoint_every=7) as store:
        for i in range(40):
            store.append_sync([_event(i, proc=k)])


def test_several_processes_share_one_chain(tmp_path: Path) -> None:
    SQLiteStore(tmp_path).close()  # create the signing key once
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(tmp_path), k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with SQLiteStore(tmp_path) as store:
        report = store.verify()
        assert report.ok and report.records == 120, report


def test_invalid_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        SQLiteStore(tmp_path, synchronous="OFF")
    with pytest.raises(ConfigError):
        SQLiteStore(tmp_path, checkpoint_every=0)
