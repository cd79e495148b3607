"""The causal attack graph: who sent what, what it set off, and what was done about it, in SQLite tables.

Nodes (``<type>:<key>``)::

    session:<session id>   user:<user id>   key:<api key id>   input:<HMAC-SHA-256 of the text>
    detection:<event id>   violation:<violation id>   response:<action id>

Edges (``src -[type]-> dst``)::

    user|key   -[sent]->        detection    who sent the flagged input
    input      -[triggered]->   detection    the (hashed) text that was flagged
    session    -[contains]->    detection|violation
    detection  -[followed_by]-> detection|violation   the previous flagged step of the same session
    detection  -[triggered]->   violation    the detection an agent-policy violation came from
    detection|violation -[triggered]-> response
    detection  -[same_source]-> detection    the same user's previous flagged input, in another session
    input      -[similar_to]->  input        near-duplicate inputs (from vector memory; ``link_similar``)

Queries are recursive CTEs: :meth:`AttackGraph.chain` walks the causal edges backwards from a node (the
steps that led to a violation), :meth:`AttackGraph.related` walks all edges both ways within N hops,
through nodes seen within T hours, :meth:`AttackGraph.sources` ranks users and keys by flagged inputs.
Exports: GraphML (:meth:`AttackGraph.write_graphml`) and Cypher for Neo4j (:meth:`AttackGraph.write_cypher`).
Nodes hold ids, hashes, actions, risks and categories — never prompt text.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO
from xml.sax.saxutils import escape, quoteattr

import orjson

from aimds.store.sqlite import SQLiteStore

log = logging.getLogger("aimds.store")

NODE_TYPES: Final = ("session", "user", "key", "input", "detection", "violation", "response")
EDGE_TYPES: Final = ("sent", "triggered", "contains", "followed_by", "same_source", "similar_to")
CAUSAL: Final = ("sent", "triggered", "contains", "followed_by")
_ID_PREFIXES: Final = {"evt_": "detection", "vio_": "violation", "act_": "response"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS graph_nodes (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    props TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS graph_nodes_type ON graph_nodes(type, last_ts);
CREATE TABLE IF NOT EXISTS graph_edges (
    src TEXT NOT NULL,
    type TEXT NOT NULL,
    dst TEXT NOT NULL,
    ts REAL NOT NULL,
    props TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (src, type, dst)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS graph_edges_dst ON graph_edges(dst, type);
CREATE INDEX IF NOT EXISTS graph_edges_src_ts ON graph_edges(src, type, ts);
CREATE INDEX IF NOT EXISTS graph_edges_ts ON graph_edges(ts);
"""


@dataclass(frozen=True, slots=True)
class Node:
    """A graph node; ``depth`` is its distance from the node a query started at."""

    id: str
    type: str
    first_ts: float
    last_ts: float
    props: Mapping[str, Any]
    depth: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"id": self.id, "type": self.type, "first_ts": self.first_ts, "last_ts": self.last_ts,
                "props": dict(self.props), "depth": self.depth}


@dataclass(frozen=True, slots=True)
class Edge:
    """A directed, typed edge."""

    src: str
    type: str
    dst: str
    ts: float
    props: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"src": self.src, "type": self.type, "dst": self.dst, "ts": self.ts, "props": dict(self.props)}


@dataclass(frozen=True, slots=True)
class Subgraph:
    """The answer to a graph query: nodes (with their depth) and the edges among them."""

    root: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"root": self.root, "nodes": [n.to_dict() for n in self.nodes],
                "edges": [e.to_dict() for e in self.edges]}


_SURROGATES: Final = dict.fromkeys(range(0xD800, 0xE000), 0xFFFD)


def _key(value: Any) -> str:
    """An id part as SQLite can store it (lone surrogates from a client's JSON become U+FFFD)."""
    return str(value).translate(_SURROGATES)


def _props(d: Mapping[str, Any]) -> str:
    return orjson.dumps({k: v for k, v in d.items() if v is not None}, option=orjson.OPT_SORT_KEYS).decode()


def _node(conn: sqlite3.Connection, nid: str, ntype: str, ts: float, props: Mapping[str, Any] | None = None) -> None:
    conn.execute("INSERT INTO graph_nodes(id, type, first_ts, last_ts, props) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT(id) DO UPDATE SET first_ts = MIN(first_ts, excluded.first_ts), "
                 "last_ts = MAX(last_ts, excluded.last_ts), props = json_patch(props, excluded.props)",
                 (nid, ntype, ts, ts, _props(props or {})))


def _edge(conn: sqlite3.Connection, src: str, etype: str, dst: str, ts: float,
          props: Mapping[str, Any] | None = None) -> None:
    if src == dst:
        return
    conn.execute("INSERT INTO graph_edges(src, type, dst, ts, props) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT(src, type, dst) DO UPDATE SET ts = MAX(ts, excluded.ts)",
                 (src, etype, dst, ts, _props(props or {})))


def _last_step(conn: sqlite3.Connection, session: str, before: float) -> str | None:
    row = conn.execute("SELECT dst FROM graph_edges WHERE src = ? AND type = 'contains' AND ts <= ? "
                       "ORDER BY ts DESC LIMIT 1", (session, before)).fetchone()
    return None if row is None else row[0]


def source_node(event_id: str) -> str:
    """The node id of what an action or violation points back to (``evt_…`` → detection, ``vio_…`` → violation)."""
    event_id = _key(event_id)
    for prefix, ntype in _ID_PREFIXES.items():
        if event_id.startswith(prefix):
            return f"{ntype}:{event_id}"
    return f"detection:{event_id}"


class AttackGraph:
    """The causal attack graph in the service's SQLite file (see the module docstring)."""

    def __init__(self, store: SQLiteStore, *, record_allowed: bool = False) -> None:
        self.store = store
        self.record_allowed = record_allowed
        store.ensure_schema(_SCHEMA)

    # ----------------------------------------------------------------- recording
    def record_event(self, event: Mapping[str, Any], *, wait: bool = False) -> bool:
        """Add a stored detection event (:func:`aimds.server.events.make_event`); allowed ones only when
        ``record_allowed``. False when the event was skipped."""
        if event.get("kind", "event") != "event" or "id" not in event:
            raise ValueError("not a detection event record")
        if event.get("action") == "allow" and not self.record_allowed:
            return False
        ev = dict(event)
        det = f"detection:{_key(ev['id'])}"
        ts = float(ev.get("ts") or time.time())

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            _node(conn, det, "detection", ts, {
                "action": ev.get("action"), "risk": ev.get("risk"), "categories": list(ev.get("categories") or []),
                "rules": list(ev.get("rules") or [])[:10], "route": ev.get("route"), "tenant": ev.get("tenant"),
                "role": ev.get("role"), "direction": ev.get("direction")})
            if ev.get("input_hmac"):
                inp = f"input:{_key(ev['input_hmac'])}"
                _node(conn, inp, "input", ts, {"chars": ev.get("chars")})
                _edge(conn, inp, "triggered", det, ts)
            sid = _key(ev["session_id"]) if ev.get("session_id") else None
            if sid:
                session = f"session:{sid}"
                prev = _last_step(conn, session, ts)
                _node(conn, session, "session", ts)
                _edge(conn, session, "contains", det, ts)
                if prev is not None:
                    _edge(conn, prev, "followed_by", det, ts)
            if ev.get("key_id"):
                key = f"key:{_key(ev['key_id'])}"
                _node(conn, key, "key", ts)
                _edge(conn, key, "sent", det, ts)
            if ev.get("user_id"):
                user = f"user:{_key(ev['user_id'])}"
                row = conn.execute("SELECT e.dst FROM graph_edges e WHERE e.src = ? AND e.type = 'sent' AND e.ts <= ? "
                                   "AND NOT EXISTS (SELECT 1 FROM graph_edges c WHERE c.dst = e.dst "
                                   "AND c.type = 'contains' AND c.src = ?) ORDER BY e.ts DESC LIMIT 1",
                                   (user, ts, f"session:{sid}" if sid else "")).fetchone()
                _node(conn, user, "user", ts)
                _edge(conn, user, "sent", det, ts)
                if row is not None:
                    _edge(conn, row[0], "same_source", det, ts)
            return []

        self._write(prepare, wait)
        return True

    def record_violation(self, violation_id: str, *, policy_id: str, severity: str, action: str, step: int,
                         failed: str = "", session_id: str | None = None, event_id: str | None = None,
                         ts: float | None = None, wait: bool = False) -> str:
        """Add an agent-policy violation (``vio_…`` id) of a session/trace, set off by ``event_id`` if known;
        its node id."""
        vid = f"violation:{_key(violation_id)}"
        t = time.time() if ts is None else ts

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            _node(conn, vid, "violation", t, {"policy_id": policy_id, "severity": severity, "action": action,
                                              "step": step, "failed": failed[:200]})
            cause = source_node(event_id) if event_id else None
            if cause is not None:
                _node(conn, cause, cause.split(":", 1)[0], t)
                _edge(conn, cause, "triggered", vid, t)
            if session_id:
                session = f"session:{_key(session_id)}"
                prev = _last_step(conn, session, t)
                _node(conn, session, "session", t)
                _edge(conn, session, "contains", vid, t)
                if prev is not None and prev != cause:
                    _edge(conn, prev, "followed_by", vid, t)
            return []

        self._write(prepare, wait)
        return vid

    def record_response(self, action: Any, *, wait: bool = False) -> str:
        """Add a response action (:class:`aimds.respond.actions.ResponseAction`) and the edge from what set it off."""
        rid = f"response:{_key(action.id)}"
        t = float(action.created)
        props = {"kind": str(action.kind), "priority": action.priority.label, "reason": action.reason,
                 "deadline_ms": action.deadline_ms}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            _node(conn, rid, "response", t, props)
            if action.event_id:
                cause = source_node(action.event_id)
                _node(conn, cause, cause.split(":", 1)[0], t)
                _edge(conn, cause, "triggered", rid, t)
            return []

        self._write(prepare, wait)
        return rid

    def link_similar(self, input_a: str, input_b: str, score: float, *, wait: bool = False) -> None:
        """Record that two inputs (their HMACs) are near-duplicates (``similar_to``, with the score)."""
        a, b = sorted((f"input:{_key(input_a)}", f"input:{_key(input_b)}"))
        t = time.time()

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            _node(conn, a, "input", t)
            _node(conn, b, "input", t)
            _edge(conn, a, "similar_to", b, t, {"score": round(float(score), 4)})
            return []

        self._write(prepare, wait)

    def purge(self, older_than: float) -> int:
        """Delete nodes last seen before ``older_than`` (epoch seconds) and their edges; how many nodes."""
        out: dict[str, int] = {}

        def prepare(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            conn.execute("DELETE FROM graph_edges WHERE src IN (SELECT id FROM graph_nodes WHERE last_ts < ?) "
                         "OR dst IN (SELECT id FROM graph_nodes WHERE last_ts < ?)", (older_than, older_than))
            out["n"] = conn.execute("DELETE FROM graph_nodes WHERE last_ts < ?", (older_than,)).rowcount
            return []

        self._write(prepare, True)
        return out.get("n", 0)

    def _write(self, prepare: Any, wait: bool) -> None:
        if wait:
            self.store.append_sync([], prepare=prepare)
        else:
            self.store.append([], _log_error, prepare=prepare)

    # ----------------------------------------------------------------- queries
    def _conn(self) -> sqlite3.Connection:
        return self.store.reader()

    def node(self, node_id: str) -> Node | None:
        """One node by id."""
        row = self._conn().execute("SELECT id, type, first_ts, last_ts, props FROM graph_nodes WHERE id = ?",
                                   (node_id,)).fetchone()
        return None if row is None else Node(row[0], row[1], row[2], row[3], orjson.loads(row[4]))

    def resolve(self, ref: str) -> str | None:
        """The node id for ``ref``: a node id, or a bare event/violation/action/session/user/key id or input hash."""
        ref = _key(ref)
        if ":" in ref and self.node(ref) is not None:
            return ref
        candidates = [source_node(ref)] if ref[:4] in _ID_PREFIXES else []
        candidates += [f"{t}:{ref}" for t in ("session", "user", "key", "input", "detection", "violation")]
        for c in candidates:
            if self.node(c) is not None:
                return c
        return None

    def chain(self, node_id: str, *, max_depth: int = 50, edge_types: Sequence[str] = CAUSAL) -> Subgraph:
        """Everything that led to ``node_id``: its ancestors over the causal edges, oldest first."""
        sql = ("WITH RECURSIVE up(id, depth) AS (SELECT ?, 0 UNION "
               "SELECT e.src, up.depth + 1 FROM up JOIN graph_edges e ON e.dst = up.id "
               "WHERE up.depth < ? AND e.type IN (SELECT value FROM json_each(?))) "
               "SELECT n.id, n.type, n.first_ts, n.last_ts, n.props, MIN(up.depth) FROM up "
               "JOIN graph_nodes n ON n.id = up.id GROUP BY n.id ORDER BY n.first_ts, n.id")
        rows = self._conn().execute(sql, (node_id, max_depth, orjson.dumps(list(edge_types)).decode())).fetchall()
        nodes = tuple(Node(r[0], r[1], r[2], r[3], orjson.loads(r[4]), r[5]) for r in rows)
        return Subgraph(node_id, nodes, self._edges_among([n.id for n in nodes], edge_types))

    def related(self, node_id: str, *, hops: int = 2, hours: float = 24.0, limit: int = 500,
                types: Sequence[str] | None = None) -> Subgraph:
        """Nodes within ``hops`` edges of ``node_id`` (either direction), reached only through nodes seen within
        ``hours`` of it; nearest first, at most ``limit`` (``types`` filters the answer, not the walk)."""
        start = self.node(node_id)
        if start is None:
            return Subgraph(node_id, (), ())
        span = hours * 3600.0 if math.isfinite(hours) else 1e18
        lo, hi = start.first_ts - span, start.last_ts + span
        sql = ("WITH RECURSIVE walk(id, depth) AS (SELECT ?1, 0 "
               "UNION SELECT e.dst, w.depth + 1 FROM walk w JOIN graph_edges e ON e.src = w.id "
               "  JOIN graph_nodes n ON n.id = e.dst WHERE w.depth < ?2 AND n.last_ts >= ?3 AND n.first_ts <= ?4 "
               "UNION SELECT e.src, w.depth + 1 FROM walk w JOIN graph_edges e ON e.dst = w.id "
               "  JOIN graph_nodes n ON n.id = e.src WHERE w.depth < ?2 AND n.last_ts >= ?3 AND n.first_ts <= ?4) "
               "SELECT n.id, n.type, n.first_ts, n.last_ts, n.props, MIN(w.depth) AS d FROM walk w "
               "JOIN graph_nodes n ON n.id = w.id WHERE n.id != ?1 "
               + ("AND n.type IN (SELECT value FROM json_each(?5)) " if types else "")
               + "GROUP BY n.id ORDER BY d, n.last_ts DESC LIMIT ?6")
        args: list[Any] = [node_id, max(0, hops), lo, hi, orjson.dumps(list(types or [])).decode(), max(1, limit)]
        if not types:
            sql = sql.replace("?6", "?5")
            args.pop(4)
        rows = self._conn().execute(sql, args).fetchall()
        nodes = (Node(start.id, start.type, start.first_ts, start.last_ts, start.props, 0),
                 *(Node(r[0], r[1], r[2], r[3], orjson.loads(r[4]), r[5]) for r in rows))
        return Subgraph(node_id, nodes, self._edges_among([n.id for n in nodes], EDGE_TYPES))

    def sources(self, *, limit: int = 10, hours: float | None = None) -> list[dict[str, Any]]:
        """Users and keys ranked by flagged inputs sent (within the last ``hours`` if given)."""
        since = time.time() - hours * 3600.0 if hours is not None else -1.0
        rows = self._conn().execute(
            "SELECT e.src, s.type, COUNT(*) AS n, "
            "SUM(json_extract(d.props, '$.action') = 'block') AS blocked, "
            "MAX(json_extract(d.props, '$.risk')) AS max_risk, MIN(e.ts), MAX(e.ts), "
            "COUNT(DISTINCT (SELECT c.src FROM graph_edges c WHERE c.dst = e.dst AND c.type = 'contains')) "
            "FROM graph_edges e JOIN graph_nodes s ON s.id = e.src JOIN graph_nodes d ON d.id = e.dst "
            "WHERE e.type = 'sent' AND e.ts >= ? AND d.type = 'detection' "
            "GROUP BY e.src ORDER BY n DESC, blocked DESC, MAX(e.ts) DESC LIMIT ?", (since, max(1, limit))).fetchall()
        return [{"id": r[0], "type": r[1], "detections": r[2], "blocked": r[3] or 0, "max_risk": r[4],
                 "first_ts": r[5], "last_ts": r[6], "sessions": r[7]} for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Nodes per type and edges per type."""
        c = self._conn()
        return {"nodes": dict(c.execute("SELECT type, COUNT(*) FROM graph_nodes GROUP BY type").fetchall()),
                "edges": dict(c.execute("SELECT type, COUNT(*) FROM graph_edges GROUP BY type").fetchall())}

    def _edges_among(self, ids: Sequence[str], edge_types: Sequence[str]) -> tuple[Edge, ...]:
        if not ids:
            return ()
        rows = self._conn().execute(
            "SELECT src, type, dst, ts, props FROM graph_edges WHERE src IN (SELECT value FROM json_each(?1)) "
            "AND dst IN (SELECT value FROM json_each(?1)) AND type IN (SELECT value FROM json_each(?2)) "
            "ORDER BY ts, src, dst", (orjson.dumps(list(ids)).decode(), orjson.dumps(list(edge_types)).decode()))
        return tuple(Edge(r[0], r[1], r[2], r[3], orjson.loads(r[4])) for r in rows.fetchall())

    def iter_nodes(self) -> Iterable[Node]:
        """All nodes, oldest first."""
        cur = self._conn().execute("SELECT id, type, first_ts, last_ts, props FROM graph_nodes ORDER BY first_ts, id")
        for r in cur:
            yield Node(r[0], r[1], r[2], r[3], orjson.loads(r[4]))

    def iter_edges(self) -> Iterable[Edge]:
        """All edges, oldest first."""
        for r in self._conn().execute("SELECT src, type, dst, ts, props FROM graph_edges ORDER BY ts, src, dst"):
            yield Edge(r[0], r[1], r[2], r[3], orjson.loads(r[4]))

    # ----------------------------------------------------------------- export
    def write_graphml(self, out: TextIO, graph: Subgraph | None = None) -> None:
        """Write the whole graph (or ``graph``) as GraphML; node/edge properties as data keys (``props`` as JSON)."""
        write_graphml(out, graph.nodes if graph else self.iter_nodes(), graph.edges if graph else self.iter_edges())

    def write_cypher(self, out: TextIO, graph: Subgraph | None = None) -> None:
        """Write the whole graph (or ``graph``) as Cypher statements for Neo4j (idempotent: MERGE)."""
        write_cypher(out, graph.nodes if graph else self.iter_nodes(), graph.edges if graph else self.iter_edges())


# --------------------------------------------------------------------- GraphML and Cypher writers
# characters XML 1.0 cannot carry (C0 controls but tab/newline/return, surrogates, U+FFFE/U+FFFF) → U+FFFD
_XML_BAD: Final = {c: 0xFFFD for c in [*range(0x20), *range(0xD800, 0xE000), 0xFFFE, 0xFFFF]
                   if c not in (0x09, 0x0A, 0x0D)}


def _clean(text: str) -> str:
    return text.translate(_XML_BAD)


def _xml(value: Any) -> str:
    return escape(_clean(value if isinstance(value, str) else orjson.dumps(value).decode()))


def write_graphml(out: TextIO, nodes: Iterable[Node], edges: Iterable[Edge]) -> None:
    """GraphML 1.0 (directed); keys: ``type``, ``first_ts``, ``last_ts``, ``props`` for nodes; ``type``, ``ts``,
    ``props`` for edges."""
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n'
              '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
              'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
              'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
              '  <key id="ntype" for="node" attr.name="type" attr.type="string"/>\n'
              '  <key id="first_ts" for="node" attr.name="first_ts" attr.type="double"/>\n'
              '  <key id="last_ts" for="node" attr.name="last_ts" attr.type="double"/>\n'
              '  <key id="nprops" for="node" attr.name="props" attr.type="string"/>\n'
              '  <key id="etype" for="edge" attr.name="type" attr.type="string"/>\n'
              '  <key id="ts" for="edge" attr.name="ts" attr.type="double"/>\n'
              '  <key id="eprops" for="edge" attr.name="props" attr.type="string"/>\n'
              '  <graph id="aimds" edgedefault="directed">\n')
    for n in nodes:
        out.write(f'    <node id={quoteattr(_clean(n.id))}>'
                  f'<data key="ntype">{_xml(n.type)}</data><data key="first_ts">{n.first_ts!r}</data>'
                  f'<data key="last_ts">{n.last_ts!r}</data><data key="nprops">{_xml(dict(n.props))}</data></node>\n')
    for i, e in enumerate(edges):
        out.write(f'    <edge id="e{i}" source={quoteattr(_clean(e.src))} '
                  f'target={quoteattr(_clean(e.dst))}><data key="etype">{_xml(e.type)}</data>'
                  f'<data key="ts">{e.ts!r}</data><data key="eprops">{_xml(dict(e.props))}</data></edge>\n')
    out.write("  </graph>\n</graphml>\n")


_CYPHER_ESC = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def cypher_string(value: str) -> str:
    """A single-quoted Cypher string literal (backslash escapes; other control characters as ``\\uXXXX``)."""
    out = []
    for ch in value:
        if ch in _CYPHER_ESC:
            out.append(_CYPHER_ESC[ch])
        elif ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _cypher_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float) and math.isfinite(v):
        return repr(v)
    if isinstance(v, str):
        return cypher_string(v)
    if isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
        return "[" + ", ".join(cypher_string(x) for x in v) + "]"
    return cypher_string(orjson.dumps(v, default=str).decode())


def _prop_key(k: str) -> str:
    """A property name Cypher accepts unquoted (our keys already are; anything else is rewritten)."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in k[:60])
    return safe if safe and not safe[0].isdigit() and safe == k else "p_" + safe


def _cypher_props(props: Mapping[str, Any]) -> str:
    parts = []
    for k, v in sorted(props.items()):
        if v is None:
            continue
        key = _prop_key(k)
        parts.append(f"{key}: {_cypher_value(v)}")
    return "{" + ", ".join(parts) + "}"


def write_cypher(out: TextIO, nodes: Iterable[Node], edges: Iterable[Edge]) -> None:
    """Cypher for Neo4j 5: a uniqueness constraint, one ``MERGE`` per node (label ``AimdsNode`` plus its type,
    e.g. ``Detection``) and one per edge (relationship type upper-cased, e.g. ``FOLLOWED_BY``)."""
    out.write("// AIMDS attack graph. Run with cypher-shell; MERGE makes a re-import idempotent.\n"
              "CREATE CONSTRAINT aimds_node_id IF NOT EXISTS FOR (n:AimdsNode) REQUIRE n.id IS UNIQUE;\n")
    for n in nodes:
        label = n.type.capitalize() if n.type in NODE_TYPES else "Other"
        props = _cypher_props({**n.props, "type": n.type, "first_ts": n.first_ts, "last_ts": n.last_ts})
        out.write(f"MERGE (n:AimdsNode {{id: {cypher_string(n.id)}}}) SET n:{label} SET n += {props};\n")
    for e in edges:
        rel = e.type.upper() if e.type in EDGE_TYPES else "RELATED"
        props = _cypher_props({**e.props, "ts": e.ts})
        out.write(f"MATCH (a:AimdsNode {{id: {cypher_string(e.src)}}}), (b:AimdsNode {{id: {cypher_string(e.dst)}}}) "
                  f"MERGE (a)-[r:{rel}]->(b) SET r += {props};\n")


def _log_error(_: Any, error: BaseException | None) -> None:
    if error is not None:
        log.error("attack graph write failed: %s", error)
