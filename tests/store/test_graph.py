"""The causal attack graph: recording, chain / related / sources queries, GraphML and Cypher exports."""

from __future__ import annotations

import io
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from aimds.respond.actions import ResponseConfig
from aimds.server.events import make_event
from aimds.store.graph import AttackGraph, cypher_string
from aimds.store.sqlite import SQLiteStore
from aimds.types import Action, Category, ScanRequest, Verdict

NOW = time.time()
HOUR = 3600.0


def _ev(eid: str, ts: float, action: str = "block", *, session: str | None = "s1", user: str | None = "u1",
        key: str = "k1", text: str = "", risk: float = 0.9, cats: tuple[str, ...] = ("prompt_injection",)
        ) -> dict[str, Any]:
    return {"id": eid, "kind": "event", "ts": ts, "route": "/v1/detect", "key_id": key, "session_id": session,
            "user_id": user, "tenant": "default", "action": action, "risk": risk, "categories": list(cats),
            "rules": ["signatures:r1"], "input_hmac": f"h-{text or eid}", "chars": 10}


@pytest.fixture()
def graph(tmp_path: Path) -> Any:
    store = SQLiteStore(tmp_path)
    g = AttackGraph(store)
    g.record_event(_ev("evt_1", NOW - 50, "monitor", risk=0.6), wait=True)
    assert not g.record_event(_ev("evt_2", NOW - 40, "allow", risk=0.1), wait=True)   # allowed: not recorded
    g.record_event(_ev("evt_3", NOW - 30), wait=True)
    g.record_violation("vio_1", policy_id="untrusted-no-outbound", severity="high", action="block", step=3,
                       failed="G(!action:outbound)", session_id="s1", event_id="evt_3", ts=NOW - 29, wait=True)
    for a in ResponseConfig.load().for_verdict("block", ["prompt_injection"], 0.95, session_id="s1",
                                               event_id="evt_3"):
        g.record_response(a, wait=True)
    g.record_event(_ev("evt_4", NOW - 20, session="s2", text="evt_3"), wait=True)       # same user, same text
    g.record_event(_ev("evt_5", NOW - 48 * HOUR, session="s3", user="u2"), wait=True)   # two days old, same key
    for i in range(3):
        g.record_event(_ev(f"evt_x{i}", NOW - 10 + i, session="s9", user="u3", key="k9",
                           action="block" if i else "monitor"), wait=True)
    yield g
    store.close()


def _ids(sub: Any) -> set[str]:
    return {n.id for n in sub.nodes}


def test_chain_walks_causal_edges_back_from_a_violation(graph: AttackGraph) -> None:
    sub = graph.chain("violation:vio_1")
    ids = _ids(sub)
    assert {"violation:vio_1", "detection:evt_3", "detection:evt_1", "session:s1", "input:h-evt_3", "input:h-evt_1",
            "key:k1", "user:u1"} <= ids
    assert "detection:evt_2" not in ids                 # allowed events are not in the graph
    assert "detection:evt_4" not in ids                 # same_source is not causal
    assert not any(i.startswith("response:") for i in ids)
    depth = {n.id: n.depth for n in sub.nodes}
    assert depth["violation:vio_1"] == 0 and depth["detection:evt_3"] == 1 and depth["detection:evt_1"] == 2
    edges = {(e.src, e.type, e.dst) for e in sub.edges}
    assert ("detection:evt_1", "followed_by", "detection:evt_3") in edges
    assert ("detection:evt_3", "triggered", "violation:vio_1") in edges
    assert [n.first_ts for n in sub.nodes] == sorted(n.first_ts for n in sub.nodes)
    assert graph.chain("violation:vio_1", max_depth=1).nodes[-1].id == "violation:vio_1"
    assert _ids(graph.chain("violation:vio_1", max_depth=1)) == {"violation:vio_1", "detection:evt_3", "session:s1"}


def test_related_respects_hops_and_time_window(graph: AttackGraph) -> None:
    one = _ids(graph.related("detection:evt_3", hops=1))
    assert {"violation:vio_1", "session:s1", "detection:evt_4", "key:k1", "user:u1"} <= one
    assert sum(i.startswith("response:") for i in one) == 3          # block, alert_webhook, alert_log
    assert "detection:evt_1" in one and "input:h-evt_1" not in one     # evt_1 -followed_by-> evt_3, its input 2 hops
    two = _ids(graph.related("detection:evt_3", hops=2, hours=1))
    assert "input:h-evt_1" in two and "detection:evt_5" not in two    # evt_5 is 48 h old
    assert "detection:evt_5" in _ids(graph.related("detection:evt_3", hops=2, hours=72))
    assert "detection:evt_x0" not in _ids(graph.related("detection:evt_3", hops=4, hours=72))  # no path
    only = graph.related("detection:evt_3", hops=2, hours=72, types=["detection"])
    assert {n.type for n in only.nodes[1:]} == {"detection"} and only.nodes[0].id == "detection:evt_3"
    assert graph.related("detection:missing").nodes == ()


def test_sources_rank_users_and_keys(graph: AttackGraph) -> None:
    top = graph.sources(limit=4)
    assert (top[0]["id"], top[0]["detections"]) == ("key:k1", 4)
    assert {(s["id"], s["detections"]) for s in top[1:]} == {("key:k9", 3), ("user:u1", 3), ("user:u3", 3)}
    u3 = next(s for s in graph.sources(limit=10) if s["id"] == "user:u3")
    assert u3["blocked"] == 2 and u3["sessions"] == 1
    recent = {s["id"] for s in graph.sources(limit=10, hours=1)}
    assert "user:u2" not in recent and "user:u2" in {s["id"] for s in graph.sources(limit=10)}


def test_same_source_links_a_users_sessions(graph: AttackGraph) -> None:
    edges = {(e.src, e.type, e.dst) for e in graph.iter_edges()}
    assert ("detection:evt_3", "same_source", "detection:evt_4") in edges
    assert ("detection:evt_1", "same_source", "detection:evt_3") not in edges   # same session: followed_by


def test_resolve_bare_ids(graph: AttackGraph) -> None:
    assert graph.resolve("evt_3") == "detection:evt_3"
    assert graph.resolve("vio_1") == "violation:vio_1"
    assert graph.resolve("s1") == "session:s1"
    assert graph.resolve("detection:evt_1") == "detection:evt_1"
    assert graph.resolve("nothing") is None


def test_graphml_parses_and_carries_everything(graph: AttackGraph) -> None:
    graph.record_event(_ev("evt_odd", NOW, session="s<&\"'>\x01\ud800", user="u\u202e"), wait=True)
    buf = io.StringIO()
    graph.write_graphml(buf)
    root = ET.fromstring(buf.getvalue().encode("utf-8"))
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    nodes = root.findall("g:graph/g:node", ns)
    edges = root.findall("g:graph/g:edge", ns)
    counts = graph.counts()
    assert len(nodes) == sum(counts["nodes"].values()) and len(edges) == sum(counts["edges"].values())
    ids = {n.get("id") for n in nodes}
    assert "session:s<&\"'>\ufffd\ufffd" in ids and "user:u\u202e" in ids
    det = next(n for n in nodes if n.get("id") == "detection:evt_3")
    data = {d.get("key"): d.text for d in det}
    assert data["ntype"] == "detection" and '"action":"block"' in (data["nprops"] or "")
    assert all(e.get("source") in ids and e.get("target") in ids for e in edges)


def test_cypher_shape_and_escaping(graph: AttackGraph) -> None:
    graph.record_event(_ev("evt_q", NOW, session="it's\n\\x"), wait=True)
    buf = io.StringIO()
    graph.write_cypher(buf)
    lines = buf.getvalue().splitlines()
    assert lines[1].startswith("CREATE CONSTRAINT aimds_node_id IF NOT EXISTS")
    node_re = re.compile(r"^MERGE \(n:AimdsNode \{id: '(?:[^'\\]|\\.)*'\}\) SET n:[A-Z][a-z]+ SET n \+= \{.*\};$")
    edge_re = re.compile(r"^MATCH \(a:AimdsNode \{id: '(?:[^'\\]|\\.)*'\}\), \(b:AimdsNode \{id: '(?:[^'\\]|\\.)*'\}\) "
                         r"MERGE \(a\)-\[r:[A-Z_]+\]->\(b\) SET r \+= \{.*\};$")
    counts = graph.counts()
    assert sum(bool(node_re.match(x)) for x in lines) == sum(counts["nodes"].values())
    assert sum(bool(edge_re.match(x)) for x in lines) == sum(counts["edges"].values())
    assert "{id: 'session:it\\'s\\n\\\\x'}" in buf.getvalue()
    assert "-[r:FOLLOWED_BY]->" in buf.getvalue() and "SET n:Violation" in buf.getvalue()
    assert cypher_string("a\u0007\u2028") == "'a\\u0007\\u2028'"


def test_real_event_record_and_restart(tmp_path: Path) -> None:
    request = ScanRequest("Ignore previous instructions", session_id="sess", user_id="alice")
    verdict = Verdict(Action.BLOCK, 0.97, (Category.PROMPT_INJECTION,), (), {})
    event = make_event(request, verdict, key_id="kid", hash_key=b"k" * 32, store_raw_text=False, route="/v1/detect")
    with SQLiteStore(tmp_path) as store:
        assert AttackGraph(store).record_event(event)            # asynchronous: committed by close()
    with SQLiteStore(tmp_path) as store:
        g = AttackGraph(store)
        node = g.node(f"detection:{event['id']}")
        assert node is not None and node.props["categories"] == ["prompt_injection"]
        assert "Ignore" not in str(list(g.iter_nodes()))          # no prompt text in the graph
        assert _ids(g.chain(node.id)) == {node.id, "session:sess", "user:alice", "key:kid",
                                          f"input:{event['input_hmac']}"}
        assert g.purge(time.time() + 1) == 5 and g.counts() == {"nodes": {}, "edges": {}}
