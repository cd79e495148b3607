"""Session-level detection on the held-out multi-turn set, single-message vs with session analysis.

    python benchmarks/sessions_eval.py [--data benchmarks/data/sessions_eval.jsonl | --split tune] [--json OUT]

Prints one JSON report: both modes (same ``overall`` keys as ``aimds eval``), the analysis with the
Lyapunov term on and off, and the per-turn cost of the analysis (µs, p50/p99, turns with history).
Regenerate the data with ``python -m aimds.train.sessions --split eval --out …``; ``--split tune``
generates the tuning split in memory (the only split thresholds may be chosen on).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aimds import Guard
from aimds.analyze.session import SessionAnalyzer
from aimds.eval.sessions import evaluate_sessions
from aimds.train.sessions import SPLITS, generate

DEFAULT = Path(__file__).resolve().parent / "data" / "sessions_eval.jsonl"


def main(argv: list[str] | None = None) -> int:
    """Run both modes and print the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT))
    ap.add_argument("--split", choices=SPLITS, help="generate this split in memory instead of reading --data")
    ap.add_argument("--json", help="also write the report here")
    args = ap.parse_args(argv)
    if args.split:
        rows, args.data = generate(args.split), f"split:{args.split}"
    else:
        rows = [json.loads(line) for line in Path(args.data).read_text("utf-8").splitlines() if line.strip()]
    guard = Guard().load()
    keep = ("overall", "session_findings_alone", "by_kind", "by_category", "session_rules_in_flagged_turns",
            "first_flagged_turn_mean")
    report: dict[str, object] = {"data": args.data, "n": len(rows), "versions": guard.versions}
    single = evaluate_sessions(guard, rows, analysis=False)
    report["single_message"] = {k: single[k] for k in keep if k in single}
    for name, lyap in (("session_analysis", False), ("session_analysis_lyapunov", True)):
        r = evaluate_sessions(guard, rows, analysis=True, analyzer=SessionAnalyzer(use_lyapunov=lyap))
        report[name] = {k: r[k] for k in keep if k in r}
        report[name]["analysis_overhead_us_per_turn"] = r["session_analysis_us"]  # type: ignore[index]
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
