"""Precision/recall of the PII and secret recognisers on the labelled set, and their latency.

Span-level scoring: a predicted entity is a true positive when it overlaps a gold entity of the
same type; a gold entity is found when some prediction of its type overlaps it.

Run:
  .venv/bin/python benchmarks/pii_eval.py                        # held-out set (tests/data, seed 2)
  .venv/bin/python benchmarks/pii_eval.py --seed 1               # development set, generated in memory
  .venv/bin/python benchmarks/pii_eval.py --latency              # + p50/p99 of find_entities per 1 KB
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from aimds.detect.entities import Entity, find_entities

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT / "tests" / "data" / "pii_labelled.jsonl"


def load_rows(path: Path | None = None, seed: int | None = None) -> list[dict]:
    """Rows from a JSONL file, or generated in memory by ``scripts/gen_pii_set.py`` for ``seed``."""
    if seed is not None:
        spec = importlib.util.spec_from_file_location("gen_pii_set", ROOT / "scripts" / "gen_pii_set.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod.generate(seed)
    with (path or DEFAULT_SET).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def evaluate(rows: Iterable[dict]) -> dict:
    """Per-type and overall precision/recall, plus the misses and false alarms for inspection."""
    tp_pred: dict[str, int] = defaultdict(int)
    n_pred: dict[str, int] = defaultdict(int)
    found_gold: dict[str, int] = defaultdict(int)
    n_gold: dict[str, int] = defaultdict(int)
    misses, false_alarms = [], []
    for row in rows:
        text = row["text"]
        gold = [(g["type"], (g["start"], g["end"])) for g in row["entities"]]
        pred: list[Entity] = find_entities(text)
        for p in pred:
            n_pred[p.type] += 1
            if any(t == p.type and _overlaps((p.start, p.end), span) for t, span in gold):
                tp_pred[p.type] += 1
            else:
                false_alarms.append({"type": p.type, "value": text[p.start:p.end], "text": text})
        for t, span in gold:
            n_gold[t] += 1
            if any(p.type == t and _overlaps((p.start, p.end), span) for p in pred):
                found_gold[t] += 1
            else:
                misses.append({"type": t, "value": text[span[0]:span[1]], "text": text})
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {
        t: {"precision": tp_pred[t] / n_pred[t] if n_pred[t] else 1.0,
            "recall": found_gold[t] / n_gold[t] if n_gold[t] else 1.0,
            "predicted": n_pred[t], "gold": n_gold[t]}
        for t in types
    }
    total_pred, total_gold = sum(n_pred.values()), sum(n_gold.values())
    overall = {
        "precision": sum(tp_pred.values()) / total_pred if total_pred else 1.0,
        "recall": sum(found_gold.values()) / total_gold if total_gold else 1.0,
        "predicted": total_pred, "gold": total_gold,
    }
    return {"overall": overall, "per_type": per_type, "misses": misses, "false_alarms": false_alarms}


def chunks_of(pieces: list[str], n: int = 300, size: int = 1000) -> list[str]:
    """``n`` chunks of ``size`` characters cut from ``pieces`` joined in a shuffled-but-fixed order."""
    chunks, i = [], 0
    while len(chunks) < n:
        buf = ""
        while len(buf) < size:
            buf += pieces[i % len(pieces)] + "\n"
            i += 7
        chunks.append(buf[:size])
    return chunks


def ordinary_pieces() -> list[str]:
    """Ordinary prompt text: the requests and paragraphs of the ``aimds bench`` corpus."""
    from importlib import resources

    import yaml

    corpus = yaml.safe_load(resources.files("aimds").joinpath("data/bench/corpus.yaml").read_text("utf-8"))
    return list(corpus["requests"]) + list(corpus["paragraphs"])


def latency(chunks: list[str], rounds: int = 5) -> dict:
    """p50/p99 of ``find_entities`` in microseconds per chunk (after a warm-up)."""
    for c in chunks[:50]:
        find_entities(c)
    times = []
    for _ in range(rounds):
        for c in chunks:
            t0 = time.perf_counter()
            find_entities(c)
            times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return {"p50_us": statistics.median(times), "p99_us": times[int(0.99 * (len(times) - 1))],
            "chunks": len(chunks), "chunk_chars": len(chunks[0])}


def main() -> None:
    """Print the evaluation (and latency) as a table, or JSON with ``--json``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=None, help="generate the set for this seed instead of reading --data")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--show", type=int, default=10, help="misses/false alarms to print")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = load_rows(args.data, args.seed)
    res = evaluate(rows)
    if args.latency:
        res["latency"] = latency(chunks_of(ordinary_pieces()))
        res["latency_dense"] = latency(chunks_of([r["text"] for r in rows]))
    if args.json:
        json.dump({k: v for k, v in res.items() if k not in ("misses", "false_alarms")}, sys.stdout, indent=2)
        print()
        return
    src = f"seed {args.seed} (generated)" if args.seed is not None else str(args.data or DEFAULT_SET.relative_to(ROOT))
    print(f"# {src}: {len(rows)} texts")
    print(f"{'type':18} {'prec':>6} {'recall':>6} {'pred':>5} {'gold':>5}")
    for t, m in res["per_type"].items():
        print(f"{t:18} {m['precision']:6.3f} {m['recall']:6.3f} {m['predicted']:5d} {m['gold']:5d}")
    o = res["overall"]
    print(f"{'OVERALL':18} {o['precision']:6.3f} {o['recall']:6.3f} {o['predicted']:5d} {o['gold']:5d}")
    for name in ("misses", "false_alarms"):
        for item in res[name][: args.show]:
            print(f"{name[:-2] if name == 'misses' else 'false alarm'}: {item['type']} {item['value']!r} in "
                  f"{item['text'][:100]!r}")
    if args.latency:
        for key, what in (("latency", "ordinary text"), ("latency_dense", "labelled texts, ~8 entities")):
            lat = res[key]
            print(f"find_entities per {lat['chunk_chars']} chars of {what}: p50 {lat['p50_us']:.0f} µs, "
                  f"p99 {lat['p99_us']:.0f} µs ({lat['chunks']} chunks x 5)")


if __name__ == "__main__":
    main()
