"""``aimds learn`` on held-out attack families: before/after of the re-fitted classifier (issue 4 item 4).

For each family of ``benchmarks/data/memory_families.yaml`` (encoded attacks, a non-English family, a
jailbreak template family — none of them in the training data) ``--shots`` members are applied as analyst
feedback to a fresh store (raw text kept); ``aimds learn`` re-fits on the shipped data plus that feedback
and recalibrates on dev. The script then scores ``--n`` *other* members of each family with the default
pipeline's arithmetic (signatures + classifier + encoder cascade, the attack memory left out so that the
figure is the classifier's own) under the parent and the new version, next to the dev before/after and
the held-back feedback slice that ``aimds learn`` reports.

Usage: ``.venv/bin/python benchmarks/learn_families.py [--shots 15] [--n 50] [--quick] [--json OUT]``
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

from aimds.detect.linear_model import LinearModel
from aimds.respond.policy import Policy
from aimds.store.memory_live import AttackMemory
from aimds.store.models import MODEL_FILE, POINTS_FILE, version_dir
from aimds.store.sqlite import SQLiteStore
from aimds.train.data import default_data_dir
from aimds.train.learn import (
    LearnConfig,
    fixed_evidence,
    flagged_with,
    learn,
    linear_probabilities,
    parent_model,
)


def main() -> None:
    """Run and print JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shots", type=int, default=15)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--datasets", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import yaml

    t0 = time.perf_counter()
    families = list(load_families())
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp)) as store:
        mem = AttackMemory(store, store_raw_text=True)
        others: dict[str, list[str]] = {}
        for name in families:
            members = family_texts(name, args.shots + args.n, seed=29)
            for t in members[: args.shots]:
                mem.add_text(t, "attack", "analyst-bench", category="prompt_injection")
            others[name] = members[args.shots:]
        from aimds.store.models import ModelRegistry

        _, parent_lm, parent_ops = parent_model(ModelRegistry(store))
        out = learn(store, args.datasets or default_data_dir(), LearnConfig(quick=args.quick), log=lambda m: print(
            m, file=sys.stderr))
        folder = version_dir(store.data_dir, out["version"])
        new_lm = LinearModel.load(folder / MODEL_FILE)
        new_ops = yaml.safe_load((folder / POINTS_FILE).read_text())
        monitor = Policy.load().monitor
        fam: dict[str, dict[str, float]] = {}
        for name, texts in others.items():
            ev = fixed_evidence(texts, [1] * len(texts), [False] * len(texts))
            before = flagged_with(ev.with_lin(linear_probabilities(parent_lm, texts)), parent_ops, monitor)
            after = flagged_with(ev.with_lin(linear_probabilities(new_lm, texts)), new_ops, monitor)
            fam[name] = {"n": len(texts), "flagged_before": round(float(before.mean()), 4),
                         "flagged_after": round(float(after.mean()), 4)}
    report = {"version": out["version"], "quick": args.quick, "shots_per_family": args.shots,
              "families_other_members": fam, "learn_metrics": out["metrics"], "feedback": out["feedback"],
              "seconds": round(time.perf_counter() - t0, 1)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()
