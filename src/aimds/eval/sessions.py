"""Session-level evaluation (``aimds eval --sessions F.jsonl``): replay conversations turn by turn.

A session counts as flagged when any of its turns gets a verdict other than ``allow``. The report
has the same ``overall`` keys as :func:`aimds.eval.metrics.evaluate`, plus ``by_category`` and
``by_kind`` flag rates and the per-turn cost of the session analysis.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from aimds.analyze.session import MemorySessionStore, SessionAnalyzer
from aimds.errors import AIMDSError
from aimds.eval.metrics import overall_metrics, percentile
from aimds.pipeline import Guard
from aimds.types import ScanRequest

INPUT_ROLES = frozenset({"user", "document", "tool"})


def evaluate_sessions(guard: Guard, sessions: Iterable[dict[str, Any]], *, analysis: bool,
                      analyzer: SessionAnalyzer | None = None) -> dict[str, Any]:
    """Replay each session through ``guard`` and report session-level detection.

    With ``analysis`` on, turns go through a Guard that shares ``guard``'s detectors and policy
    and has a fresh :class:`MemorySessionStore` (and ``analyzer``, else ``guard.analyzer``, else the
    default); off, every turn is scanned on its own. Assistant turns are not scanned (they are not
    input). Rows the guard refuses (for example over the size limit) count as flagged.
    """
    rows = list(sessions)
    guard.load()
    if analysis:
        runner = Guard(guard.settings, detectors=guard.detectors, policy=guard.policy,
                       sessions=MemorySessionStore(max_sessions=max(1, len(rows))),
                       analyzer=analyzer or guard.analyzer or SessionAnalyzer())
        runner.load()
    else:
        runner = guard
    tp = fp = tn = fn = 0
    refused = 0
    turn_ms: list[float] = []
    session_us: list[float] = []
    first_turn: list[int] = []
    by_cat: dict[str, list[int]] = defaultdict(list)
    by_kind: dict[str, list[int]] = defaultdict(list)
    rule_hits: dict[str, int] = defaultdict(int)
    only: dict[int, list[int]] = {0: [], 1: []}  # sessions where a session finding alone reached monitor
    for row in rows:
        label = int(row.get("label", 0))
        sid = str(row.get("session_id", id(row)))
        flagged_at = -1
        session_hit = False
        for i, turn in enumerate(row["turns"]):
            role = str(turn.get("role", "user"))
            if role not in INPUT_ROLES:
                continue
            req = ScanRequest(text=turn["text"], role=role, session_id=sid if analysis else None,
                              user_id=row.get("user_id"))
            t0 = time.perf_counter()
            try:
                verdict = runner.scan(req)
                flagged = verdict.flagged
                if "session" in verdict.latency_us:
                    session_us.append(verdict.latency_us["session"])
                session_hit |= any(f.detector == "session" and f.score >= runner.policy.monitor
                                   for f in verdict.findings)
                if flagged:
                    for f in verdict.findings:
                        if f.detector == "session":
                            rule_hits[f.rule_id.split(":")[0] if label else f"benign:{f.rule_id}"] += 1
            except AIMDSError:
                refused += 1
                flagged = True
            turn_ms.append((time.perf_counter() - t0) * 1000)
            if flagged and flagged_at < 0:
                flagged_at = i
        flagged_session = flagged_at >= 0
        only[label].append(int(session_hit))
        if label == 1:
            tp += flagged_session
            fn += not flagged_session
            if flagged_session:
                first_turn.append(flagged_at + 1)
        else:
            fp += flagged_session
            tn += not flagged_session
        by_cat[str(row.get("category", "unknown"))].append(int(flagged_session))
        by_kind[str(row.get("kind", "unknown"))].append(int(flagged_session))
    return {
        "n": len(rows),
        "mode": "session_analysis" if analysis else "single_message",
        "overall": overall_metrics(tp, fp, tn, fn, turn_ms, refused),
        "turns": len(turn_ms),
        "session_analysis_us": {"p50": round(percentile(session_us, 50), 1),
                                "p99": round(percentile(session_us, 99), 1), "n": len(session_us)},
        "session_findings_alone": {"tpr": round(sum(only[1]) / len(only[1]), 4) if only[1] else 0.0,
                                   "fpr": round(sum(only[0]) / len(only[0]), 4) if only[0] else 0.0},
        "first_flagged_turn_mean": round(sum(first_turn) / len(first_turn), 2) if first_turn else None,
        "by_category": {k: {"n": len(v), "flagged_rate": round(sum(v) / len(v), 4)} for k, v in sorted(by_cat.items())},
        "by_kind": {k: {"n": len(v), "flagged_rate": round(sum(v) / len(v), 4)} for k, v in sorted(by_kind.items())},
        "session_rules_in_flagged_turns": dict(sorted(rule_hits.items())),
        "versions": guard.versions,
    }
