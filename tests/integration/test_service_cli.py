"""``aimds keys``, ``aimds audit`` and ``aimds events`` on a real data directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from aimds.cli import main


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_keys_audit_and_purge(tmp_path: Path) -> None:
    d = str(tmp_path)
    code, out = _run("keys", "create", "--role", "analyst", "--name", "ops", "--data-dir", d, "--json")
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"id", "key", "role"} and created["role"] == "analyst"
    code, out = _run("keys", "list", "--data-dir", d, "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [k["id"] for k in listed] == [created["id"]] and created["key"] not in out
    assert _run("keys", "revoke", created["id"], "--data-dir", d)[0] == 0
    assert _run("keys", "revoke", created["id"], "--data-dir", d)[0] != 0
    assert _run("keys", "create", "--role", "root", "--data-dir", d)[0] != 0

    code, out = _run("audit", "verify", "--data-dir", d)
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["records"] == 2

    code, out = _run("audit", "export", "--data-dir", d)
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["type"] == "header" and [x["type"] for x in lines].count("record") == 2
    assert any(x["type"] == "checkpoint" for x in lines)

    code, out = _run("events", "purge", "--data-dir", d, "--older-than-days", "1")
    assert code == 0 and json.loads(out)["deleted"] == 0

    with sqlite3.connect(tmp_path / "aimds.db") as db:
        db.execute("UPDATE records SET body = replace(body, 'analyst', 'admin') WHERE seq = 1")
    code, out = _run("audit", "verify", "--data-dir", d)
    assert code == 1 and json.loads(out)["break_seq"] == 1


def test_verify_does_not_sign_an_unsigned_tail(tmp_path: Path) -> None:
    """After a crash the tail is unsigned; inspecting the store must not bless it with a checkpoint."""
    import subprocess
    import sys

    script = ("import os, time, sys\nfrom aimds.store.sqlite import SQLiteStore, new_id\n"
              "s = SQLiteStore(sys.argv[1])\n"
              "s.append_sync([{'id': new_id('evt'), 'kind': 'event', 'ts': time.time()} for _ in range(5)])\n"
              "os._exit(0)\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    for _ in range(2):
        code, out = _run("audit", "verify", "--data-dir", str(tmp_path))
        report = json.loads(out)
        assert code == 0 and report["ok"] and report["unsigned_tail"] == 5 and report["checkpoints"] == 0
    assert _run("keys", "list", "--data-dir", str(tmp_path))[0] == 0
    code, out = _run("audit", "verify", "--data-dir", str(tmp_path))
    assert json.loads(out)["unsigned_tail"] == 5
    assert _run("audit", "verify", "--data-dir", str(tmp_path / "nope"))[0] == 2
