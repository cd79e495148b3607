""""Forget / ignore everything above" in 16 languages, written by us: how many the signatures alone and the
default pipeline flag, per split, and how many benign sentences that negate the same verbs ("don't forget the
above") they flag.

``benchmarks/data/multilingual_override.jsonl`` splits: ``tune`` (28 attacks the multilingual rules were
extended with), ``heldout`` (20 attacks in other phrasings, written after those edits and not used to make
them), ``benign_negated`` (12 benign sentences).

Usage: ``.venv/bin/python benchmarks/multilingual_probe.py [--show-misses]``
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from aimds import Guard, Settings

DATA = Path(__file__).resolve().parent / "data" / "multilingual_override.jsonl"


def main() -> None:
    """Scan every row with both guards and print flagged counts per split."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--show-misses", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    guards = {"signatures": Guard(Settings(detectors=("obfuscation", "signatures"))).load(),
              "default": Guard().load()}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    sizes: dict[str, int] = defaultdict(int)
    for r in rows:
        sizes[r["split"]] += 1
        for name, g in guards.items():
            flagged = g.scan(r["text"]).flagged
            counts[(r["split"], name)] += flagged
            if args.show_misses and flagged != bool(r["label"]):
                print(f"  {name}: {'missed' if r['label'] else 'flagged'} [{r['lang']}] {r['text']}")
    report = {split: {"n": n, **{f"{name} flagged": counts[(split, name)] for name in guards}}
              for split, n in sizes.items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
