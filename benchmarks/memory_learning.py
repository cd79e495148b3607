"""Learning from feedback on held-out attack families (issue 4 target).

For each family in ``benchmarks/data/memory_families.yaml`` (written for this project; not in the
training data): generate members, scan them with the default pipeline, confirm the first 5 members the
pipeline *misses* as attack exemplars (as ``POST /v1/feedback`` by an analyst would), then report the
flagged rate of the family's other members, and the benign flagged rate on dev before and after
(all families' exemplars added). A text is flagged when the verdict is not ``allow``; with memory,
flagged = pipeline flagged or a memory finding ≥ 0.5 (the noisy-OR risk is then ≥ the monitor
threshold), which is exactly what the pipeline with the memory stage decides.

Usage: ``.venv/bin/python benchmarks/memory_learning.py [--n 80] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_families import family_texts, load_families

from aimds import Guard, Settings
from aimds.train.data import default_data_dir, read_jsonl


def main() -> None:
    """Run the benchmark and print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=80, help="members per family")
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--dev-limit", type=int, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    base = Guard().load()
    data = Path(tempfile.mkdtemp(prefix="aimds-learn-"))
    mem_guard = Guard(Settings(detectors=("memory",), detector_options={"memory": {"data_dir": str(data)}})).load()
    det = mem_guard.detectors[0]

    def memory_flags(text: str) -> bool:
        return any(f.detector == "memory" and f.score >= 0.5 for f in mem_guard.scan(text).findings)

    dev = [r["text"] for r in read_jsonl(default_data_dir() / "dev.jsonl") if int(r["label"]) == 0]
    dev = dev[: args.dev_limit] if args.dev_limit else dev
    base_benign = [str(base.scan(t).action) != "allow" for t in dev]
    seed_benign = [memory_flags(t) for t in dev]
    report: dict[str, object] = {"families": {}}
    fams = {}
    for name in load_families():
        members = family_texts(name, args.n)
        flagged = [str(base.scan(t).action) != "allow" for t in members]
        missed = [t for t, f in zip(members, flagged, strict=True) if not f]
        shots = missed[: args.shots]
        for t in shots:
            det.memory.add_text(t, "attack", "benchmark", namespace="default",
                                category=load_families()[name]["category"])
        fams[name] = (members, flagged, shots)
    for name, (members, flagged, shots) in fams.items():
        others = [(t, f) for t, f in zip(members, flagged, strict=True) if t not in shots]
        after = [f or memory_flags(t) for t, f in others]
        missed_after = [memory_flags(t) for t, f in others if not f]
        report["families"][name] = {  # type: ignore[index]
            "members": len(members), "shots": len(shots),
            "flagged_before": round(sum(f for _, f in others) / len(others), 4),
            "flagged_after": round(sum(after) / len(after), 4),
            "missed_by_model_now_flagged": round(sum(missed_after) / max(1, len(missed_after)), 4),
        }
    after_benign = [b or memory_flags(t) for t, b in zip(dev, base_benign, strict=True)]
    n = len(dev)
    report["dev_benign"] = {"n": n, "flagged_before": round(sum(base_benign) / n, 5),
                            "flagged_with_seed_memory": round(sum(b or s for b, s in zip(base_benign, seed_benign,
                                                                                          strict=True)) / n, 5),
                            "flagged_after_feedback": round(sum(after_benign) / n, 5)}
    report["rise_pp"] = round(100 * (sum(after_benign) - sum(base_benign)) / n, 3)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    det.close()
    print(json.dumps(report, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1), "utf-8")


if __name__ == "__main__":
    main()
