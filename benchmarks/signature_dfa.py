"""Signature matching cost on text RE2 has seen before versus text it has not (lazy DFA construction).

RE2 builds its DFA states on demand, so the first pass over new text pays for states a second pass
reuses. Prints p50/p99/max (µs) of ``RuleSet.matching`` over the rule views of ``aimds bench``'s
1,000-character texts, first pass then second pass, for each chunk size (rules per RE2 ``Set``), and
the cost of ``benchmarks/hostile.py``'s 190 KB of random words on a fresh automaton: the first such text,
a second one, the first again.

``--diverse`` measures what the bench texts (a small corpus, repeated) cannot: every row of the shared
datasets (train + dev, ~11,600 texts in many languages and shapes) matched three times over, in ns per
byte per pass, and how much the process grew (the DFA states RE2 built), for each chunk size and DFA
memory budget (``--mem``, MB per automaton; each configuration in its own process). A budget too small
for the states such text needs shows as a second and third pass as slow as the first.

``--cold`` times what a fresh process pays on varied text: dev rows cut to 1,000 characters
(``aimds bench --texts``' texts), 100 scanned first, then 400 that the automata have never seen
(p50/p99/mean µs of ``RuleSet.matching`` on the folded view), for each chunk size with English and
other-language rules in separate automata and, for comparison, in file order. ``--prime-generated N`` first
reads N samples per family of our own text generator (``aimds.train.augment``), as a shipped warm-up would;
``--prime-train N`` N texts cut from train rows, as a sample of the deployment's own traffic would.

    .venv/bin/python benchmarks/signature_dfa.py [--chunks 64,128,256] [-n 400]
    .venv/bin/python benchmarks/signature_dfa.py --diverse --chunks 36,72 --mem 64,128
    .venv/bin/python benchmarks/signature_dfa.py --cold --chunks 36,72
    git archive 90a6ab4 src/aimds/data/signatures | tar -x -C OLD   # an older commit's rules
    .venv/bin/python benchmarks/signature_dfa.py --cold --chunks 72 --grouped-only \
        --compare-rules OLD/src/aimds/data/signatures
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path

import numpy as np

from aimds.detect.signature_detector import RULE_VIEWS
from aimds.detect.signatures import RuleSet, load_rules
from aimds.eval.bench import bench_texts, texts_from_rows
from aimds.normalize import normalize
from aimds.train.data import default_data_dir, read_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import _random_words


def _pct(xs: list[float]) -> dict[str, float]:
    return {"p50_us": round(float(np.percentile(xs, 50)), 1), "p99_us": round(float(np.percentile(xs, 99)), 1),
            "max_us": round(float(max(xs)), 1)}


def _diverse_run(chunk: int, mem_mb: int, datasets: str) -> dict[str, object]:
    rows = [r["text"] for name in ("train", "dev") for r in read_jsonl(Path(datasets, f"{name}.jsonl"))]
    texts = [normalize(t).folded.text.encode("utf-8", "surrogatepass") for t in rows]
    size = sum(map(len, texts))
    rs = RuleSet(load_rules(), chunk=chunk, set_mem=mem_mb << 20)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        for data in texts:
            rs.matching(data)
        passes.append(round((time.perf_counter() - t0) / size * 1e9, 1))
    grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) // 1024
    per_automaton = []  # a fourth pass, one automaton at a time: which one is slow, and its first rule
    for members, rset in rs._sets:
        t0 = time.perf_counter()
        for data in texts:
            rset.Match(data)
        per_automaton.append({"rules": len(members), "first": rs.rules[members[0]].id,
                              "ns_per_byte": round((time.perf_counter() - t0) / size * 1e9, 1)})
    return {"chunk": chunk, "mem_mb": mem_mb, "automata": len(rs._sets), "texts": len(texts), "bytes": size,
            "ns_per_byte_by_pass": passes, "rss_growth_mb": grew, "per_automaton": per_automaton}


def _rules(rules_dir: str | None) -> list:
    """The shipped rules, or those of every ``*.yaml`` in ``rules_dir`` (an older commit's: ``git archive``)."""
    return load_rules(sorted(Path(rules_dir).glob("*.yaml")) if rules_dir else None)


def _cold_run(chunk: int, by_language: bool, datasets: str, generated: int = 0,
              rows_first: int = 0, rules_dir: str | None = None, per_automaton: bool = False) -> dict[str, object]:
    rows = [r["text"] for r in read_jsonl(Path(datasets, "dev.jsonl"))]
    texts = [normalize(t).folded.text.encode("utf-8", "surrogatepass") for t in texts_from_rows(rows, 1000, 500)]
    rs = RuleSet(_rules(rules_dir), chunk=chunk, by_language=by_language)
    if generated:  # prime with our own generator's text (every family), joined into ~1,000-character texts
        from aimds.train.augment import FAMILIES, generate_samples

        made = [s.text for fam in generate_samples(seed=5, n_per_family=generated, families=list(FAMILIES)).values()
                for s in fam]
        for t in texts_from_rows(made, 1000, len(made) // 3, seed=1):
            rs.matching(normalize(t).folded.text)
    if rows_first:  # prime with traffic of the same kind: train rows (never the dev rows timed below)
        train = [r["text"] for r in read_jsonl(Path(datasets, "train.jsonl"))]
        for t in texts_from_rows(train, 1000, rows_first, seed=2):
            rs.matching(normalize(t).folded.text)
    for data in texts[:100]:
        rs.matching(data)
    times = []
    spent = [[0, 0.0] for _ in rs._sets]  # per automaton: texts it ran on, µs
    for data in texts[100:]:
        t0 = time.perf_counter_ns()
        if per_automaton:  # the same automata as ``matching``, each timed on its own
            for k in rs.automata_for(data):
                t1 = time.perf_counter_ns()
                rs._sets[k][1].Match(data)
                slot = spent[k]
                slot[0] += 1
                slot[1] += (time.perf_counter_ns() - t1) / 1000
        else:
            rs.matching(data)
        times.append((time.perf_counter_ns() - t0) / 1000)
    extra: dict[str, object] = {}
    if per_automaton:
        extra["per_automaton"] = [
            {"rules": len(members), "langs": sorted({rs.rules[i].lang for i in members}), "ran_on": n,
             "mean_us": round(us / max(1, n), 1), "share_of_time": round(us / max(1e-9, sum(times)), 3)}
            for (members, _), (n, us) in zip(rs._sets, spent, strict=True)]
    return {**extra, "chunk": chunk, "by_language": by_language, "rules": len(rs), "rules_dir": rules_dir or "shipped",
            "primed_per_family": generated,
            "primed_train_texts": rows_first, "automata": len(rs._sets),
            **_pct(times), "mean_us": round(float(np.mean(times)), 1)}


def _cold(chunks: list[int], datasets: str, generated: int = 0, rows_first: int = 0,
          rules_dirs: tuple[str | None, ...] = (None,),
          layouts: tuple[bool, ...] = (True, False), per_automaton: bool = False) -> list[dict[str, object]]:
    ctx = multiprocessing.get_context("spawn")
    out = []
    for chunk in chunks:
        for by_language in layouts:
            for rules_dir in rules_dirs:  # rule sets compared back to back, each in a fresh process
                with ctx.Pool(1) as pool:
                    out.append(pool.apply(_cold_run, (chunk, by_language, datasets, generated, rows_first,
                                                      rules_dir, per_automaton)))
                print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def _diverse(chunks: list[int], mems: list[int], datasets: str) -> list[dict[str, object]]:
    ctx = multiprocessing.get_context("spawn")
    out = []
    for chunk in chunks:
        for mem in mems:
            with ctx.Pool(1) as pool:
                out.append(pool.apply(_diverse_run, (chunk, mem, datasets)))
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def main() -> None:
    """Print a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", default="64,128,256")
    ap.add_argument("-n", type=int, default=400)
    ap.add_argument("--diverse", action="store_true", help="match the shared datasets' rows three times over")
    ap.add_argument("--mem", default="128", help="with --diverse: DFA MB per automaton, comma-separated")
    ap.add_argument("--datasets", default=str(default_data_dir()))
    ap.add_argument("--cold", action="store_true", help="time dev rows the automata have not seen")
    ap.add_argument("--prime-generated", type=int, default=0,
                    help="with --cold: first read this many generated samples per augmentation family")
    ap.add_argument("--prime-train", type=int, default=0,
                    help="with --cold: first read this many texts cut from train rows")
    ap.add_argument("--compare-rules", metavar="DIR",
                    help="with --cold: also time the rules in DIR (*.yaml), interleaved with the shipped ones")
    ap.add_argument("--grouped-only", action="store_true", help="with --cold: skip the file-order layout")
    ap.add_argument("--per-automaton", action="store_true",
                    help="with --cold: time each automaton on its own and report its share of the time")
    args = ap.parse_args()
    if args.cold:
        dirs: tuple[str | None, ...] = (None, args.compare_rules) if args.compare_rules else (None,)
        layouts = (True,) if args.grouped_only else (True, False)
        rounds = 3 if args.compare_rules else 1  # interleaved rounds: the machine's noise hits both sets alike
        report = [r for _ in range(rounds) for r in _cold([int(c) for c in args.chunks.split(",")], args.datasets,
                                                          args.prime_generated, args.prime_train, dirs, layouts,
                                                          args.per_automaton)]
        print(json.dumps(report, indent=1))
        return
    if args.diverse:
        report = _diverse([int(c) for c in args.chunks.split(",")], [int(m) for m in args.mem.split(",")],
                          args.datasets)
        print(json.dumps(report, indent=1))
        return
    rules = load_rules()
    views = [[v.text.encode("utf-8", "surrogatepass") for v in normalize(t).views if v.name in RULE_VIEWS]
             for t in bench_texts(1000, args.n, seed=11)]
    out: dict[str, object] = {"texts": args.n, "rules": len(rules)}
    for chunk in (int(c) for c in args.chunks.split(",")):
        rs = RuleSet(rules, chunk=chunk)
        passes = []
        for _ in range(2):
            times = []
            for data in views:
                t0 = time.perf_counter_ns()
                for d in data:
                    rs.matching(d)
                times.append((time.perf_counter_ns() - t0) / 1000)
            passes.append(_pct(times))
        fresh = RuleSet(rules, chunk=chunk)
        long_ms = []
        for seed in (1, 5, 1):
            data = _random_words(190_000, seed=seed).encode()
            t0 = time.perf_counter()
            fresh.matching(data)
            long_ms.append(round((time.perf_counter() - t0) * 1000, 1))
        out[f"chunk_{chunk}"] = {"first_pass": passes[0], "second_pass": passes[1],
                                 "random_words_190kb_ms": dict(zip(("first", "another", "first_again"), long_ms,
                                                                   strict=True))}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
