"""`aimds graph …` and `aimds outbox …` on a real data directory."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from aimds.cli import main
from aimds.respond.actions import ActionKind, ResponseConfig
from aimds.store.graph import AttackGraph
from aimds.store.outbox import Outbox
from aimds.store.sqlite import SQLiteStore


def _seed(path: Path) -> str:
    with SQLiteStore(path) as store:
        g = AttackGraph(store)
        for i in range(3):
            g.record_event({"id": f"evt_{i}", "kind": "event", "ts": time.time() + i, "session_id": "s1",
                            "user_id": "u1", "key_id": "k1", "action": "block", "risk": 0.9,
                            "categories": ["jailbreak"], "input_hmac": f"h{i}"}, wait=True)
        box = Outbox(store)
        action = ResponseConfig.load().make(ActionKind.ALERT_WEBHOOK, event_id="evt_2")
        box.add_sync([action])
        box.mark_dead(action.id, 8, "webhook answered 500")
        return action.id


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_graph_commands(tmp_path: Path) -> None:
    _seed(tmp_path)
    d = ["--data-dir", str(tmp_path)]
    chain = json.loads(_run("graph", "chain", "evt_2", *d))
    assert chain["root"] == "detection:evt_2"
    ids = {n["id"] for n in chain["nodes"]}
    assert {"detection:evt_0", "detection:evt_1", "session:s1", "user:u1", "key:k1"} <= ids
    related = json.loads(_run("graph", "related", "evt_0", "--hops", "1", "--type", "detection", *d))
    assert [n["id"] for n in related["nodes"]] == ["detection:evt_0", "detection:evt_1"]
    sources = json.loads(_run("graph", "sources", "--limit", "1", *d))
    assert len(sources) == 1 and sources[0]["detections"] == 3
    ET.fromstring(_run("graph", "export", *d).encode())
    out = tmp_path / "g.cypher"
    _run("graph", "export", "--format", "cypher", "--out", str(out), *d)
    assert out.read_text().count("MERGE (n:AimdsNode") == 9
    bad = CliRunner().invoke(main, ["graph", "chain", "evt_missing", *d])
    assert bad.exit_code != 0 and "no graph node" in bad.output


def test_outbox_commands(tmp_path: Path) -> None:
    action_id = _seed(tmp_path)
    d = ["--data-dir", str(tmp_path)]
    lines = [json.loads(x) for x in _run("outbox", "list", "--status", "dead", *d).splitlines()]
    assert lines[0]["counts"]["dead"] == 1 and lines[1]["id"] == action_id and lines[1]["status"] == "dead"
    assert json.loads(_run("outbox", "retry", "--id", action_id, *d)) == {"requeued": 1}
    assert json.loads(_run("outbox", "retry", *d)) == {"requeued": 0}
    assert json.loads(_run("outbox", "list", *d).splitlines()[0])["counts"] == {"pending": 1, "delivered": 0,
                                                                                 "dead": 0}
