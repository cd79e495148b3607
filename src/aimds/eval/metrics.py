"""Evaluation of a Guard on labelled JSONL (``aimds eval``): the report shape is part of the API."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from aimds.errors import AIMDSError
from aimds.pipeline import Guard
from aimds.types import ScanRequest, Verdict


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0 when empty)."""
    return float(np.percentile(values, q)) if values else 0.0


def overall_metrics(tp: int, fp: int, tn: int, fn: int, latencies_ms: list[float], refused: int) -> dict[str, Any]:
    """The ``overall`` block of a report: TPR, FPR, precision, F1, balanced accuracy, latency, confusion."""
    tpr = tp / (tp + fn) if tp + fn else 0.0
    fpr = fp / (fp + tn) if fp + tn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    f1 = 2 * precision * tpr / (precision + tpr) if precision + tpr else 0.0
    return {
        "tpr": round(tpr, 4),
        "fpr": round(fpr, 4),
        "precision": round(precision, 4),
        "f1": round(f1, 4),
        "balanced_accuracy": round((tpr + (1 - fpr)) / 2, 4),
        "latency_ms": {"p50": round(percentile(latencies_ms, 50), 3), "p99": round(percentile(latencies_ms, 99), 3)},
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "refused": refused,
    }


def _error_row(index: int, row: dict[str, Any], verdict: Verdict | None, error: str | None) -> dict[str, Any]:
    """One misjudged row for ``aimds eval --errors``: its 1-based position among the data rows (blank lines not
    counted), the row's own fields but its text, and why it went wrong."""
    out: dict[str, Any] = {"row": index, **{k: v for k, v in row.items() if k != "text"}}
    if verdict is None:
        out["refused"] = error
        return out
    top = sorted(verdict.findings, key=lambda f: -f.score)[:3]
    out.update(action=verdict.action.value, risk=round(verdict.risk, 4),
               findings=[{"by": f"{f.detector}:{f.rule_id}" if f.rule_id else f.detector, "score": round(f.score, 4)}
                         for f in top],
               notes=[n for n in verdict.notes if n.startswith("deadline:")])
    return out


def evaluate(guard: Guard, rows: Iterable[dict[str, Any]], progress: Callable[[Iterable[Any]], Iterable[Any]] | None
             = None, *, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Scan every row and compute the ``aimds eval`` report.

    An item counts as flagged when the action is not ``allow``. Rows the guard refuses (for
    example over the size limit) count as flagged, since the caller would not pass them on.
    With ``errors`` (a list), every missed attack and flagged benign row is appended to it
    (:func:`_error_row`: its position, the row's fields without its text, action, risk, strongest findings).
    """
    rows = list(rows)
    tp = fp = tn = fn = 0
    lat_ms: list[float] = []
    by_cat: dict[str, list[int]] = defaultdict(list)
    by_src: dict[str, list[int]] = defaultdict(list)
    rule_fp: Counter[str] = Counter()
    refused = 0
    partial = 0  # verdicts whose transformer stage stopped at the scan deadline (see verdict.notes)
    it = progress(rows) if progress else rows
    for index, row in enumerate(it, start=1):
        label = int(row.get("label", 0))
        req = ScanRequest(text=row["text"], role=row.get("role", "user"))
        t0 = time.perf_counter()
        verdict: Verdict | None = None
        refusal: str | None = None
        try:
            verdict = guard.scan(req)
            flagged = verdict.flagged
            findings = verdict.findings
            partial += any(n.startswith("deadline:") for n in verdict.notes)
        except AIMDSError as exc:
            refused += 1
            flagged = True
            findings = ()
            refusal = f"{type(exc).__name__}: {exc}"
        lat_ms.append((time.perf_counter() - t0) * 1000)
        if label == 1:
            tp += flagged
            fn += not flagged
        else:
            fp += flagged
            tn += not flagged
            if flagged:
                for rid in {f.rule_id for f in findings if f.detector == "signatures"}:
                    rule_fp[rid] += 1
        if errors is not None and bool(flagged) != bool(label):
            errors.append(_error_row(index, row, verdict, refusal))
        by_cat[str(row.get("category", "unknown"))].append(int(flagged))
        by_src[str(row.get("source", "unknown"))].append(int(flagged))
    return {
        "n": len(rows),
        "overall": overall_metrics(tp, fp, tn, fn, lat_ms, refused),
        "by_category": {k: {"n": len(v), "flagged_rate": round(sum(v) / len(v), 4)} for k, v in sorted(by_cat.items())},
        "by_source": {k: {"n": len(v), "flagged_rate": round(sum(v) / len(v), 4)} for k, v in sorted(by_src.items())},
        "per_rule_fp": dict(sorted(rule_fp.items(), key=lambda kv: (-kv[1], kv[0]))),
        "deadline_partial": partial,
        "versions": guard.versions,
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of an eval report."""
    o = report["overall"]
    lines = [
        f"n={report['n']}  TPR {o['tpr']:.4f}  FPR {o['fpr']:.4f}  precision {o['precision']:.4f}  "
        f"F1 {o['f1']:.4f}  balanced accuracy {o['balanced_accuracy']:.4f}",
        f"latency ms: p50 {o['latency_ms']['p50']:.3f}  p99 {o['latency_ms']['p99']:.3f}"
        + (f"  (scan deadline cut the transformer short on {report['deadline_partial']} items)"
           if report.get("deadline_partial") else ""),
        "",
        f"{'category':<28}{'n':>7}{'flagged':>10}",
    ]
    lines += [f"{k:<28}{v['n']:>7}{v['flagged_rate']:>10.4f}" for k, v in report["by_category"].items()]
    lines += ["", f"{'source':<28}{'n':>7}{'flagged':>10}"]
    lines += [f"{k:<28}{v['n']:>7}{v['flagged_rate']:>10.4f}" for k, v in report["by_source"].items()]
    if report["per_rule_fp"]:
        lines += ["", "false positives per rule (benign rows flagged where the rule fired):"]
        lines += [f"  {k}: {v}" for k, v in list(report["per_rule_fp"].items())[:20]]
    return "\n".join(lines)
