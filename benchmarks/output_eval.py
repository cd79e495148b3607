"""Output scanning evaluation: leak recall per variant, false positives, canary recall, streaming cost.

Reads benchmarks/data/output_leaks.jsonl (built by scripts/gen_output_leaks.py) and prints JSON:

- ``leak``: recall of ``prompt_leak_output`` per variant and language, on the eval half (prompts
  with an even number) and the tune half, with and without the canary detector's help;
- ``ordinary``: false-positive rate of every output detector (prompt_leak_output, canary,
  exfil_output) on the ordinary on-topic answers;
- ``canary``: recall of the ``canary`` detector (keyed, and keyless) per form;
- ``stream``: per-chunk cost of :class:`aimds.detect.stream.StreamScanner` at 100-character chunks
  (p50/p99/max/mean µs and chunks over 1 ms; all chunks, chunks without a window scan, chunks that
  complete a window), in wall-clock time (``chunk_us``) and thread CPU time (``chunk_cpu_us``), and
  the detection delay of every eval leak, in windows, the streams of ordinary answers aborted, and
  the per-chunk CPU time on hostile text (look-alikes, other scripts, emoji, combining marks, encodings).

``--tune`` searches the :class:`~aimds.detect.leak_similarity.LeakWeights` grid on the tune half only
(highest recall with at most 0.5% false positives there) and prints the choice; ``--write`` stores
it in src/aimds/data/output/leak.yaml.

    python benchmarks/output_eval.py [--tune [--write]] [--no-stream] [--window N] [--stream-reps N]
"""

from __future__ import annotations

import argparse
import base64
import codecs
import itertools
import json
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from aimds.detect.base import ScanContext
from aimds.detect.leak_similarity import LeakWeights, compare, profile
from aimds.detect.output import CanaryDetector, ExfilOutputDetector, PromptLeakOutputDetector
from aimds.normalize import normalize
from aimds.normalize.pipeline import warm_up
from aimds.types import Direction, ScanRequest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "output_leaks.jsonl"
WEIGHTS = ROOT / "src" / "aimds" / "data" / "output" / "leak.yaml"
#: The public evaluation key of scripts/gen_output_leaks.py (not a deployment key).
EVAL_KEY = b"aimds-output-leak-eval-key-v1!!!"


def load() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Prompts by id and the cases, plus one long ordinary answer per prompt (its ten answers joined:
    many on-topic facts in one response, the hard case for the distinctive-token evidence)."""
    recs = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    cases = [r for r in recs if r["type"] == "case"]
    joined: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        if c["kind"] == "ordinary":
            joined[c["prompt_id"]].append(c["response"])
    split = {c["prompt_id"]: c["split"] for c in cases}
    cases += [{"type": "case", "prompt_id": pid, "split": split[pid], "kind": "ordinary", "variant": "long",
               "lang": "en", "label": 0, "response": "\n\n".join(answers)} for pid, answers in joined.items()]
    return {r["prompt_id"]: r for r in recs if r["type"] == "prompt"}, cases


def _rate(hits: int, n: int) -> str:
    return f"{hits}/{n} = {hits / n:.3f}" if n else "0/0"


def evaluate(prompts: dict[str, dict[str, Any]], cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Detection figures of the three output detectors."""
    leak_det = PromptLeakOutputDetector()
    leak_det.load()
    keyed, keyless, exfil = CanaryDetector(key=EVAL_KEY), CanaryDetector(), ExfilOutputDetector()
    for d in (keyed, keyless, exfil):
        d.load()
    by: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    with_canary: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    ordinary: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    canary: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    false_positives: list[dict[str, Any]] = []
    misses: list[dict[str, Any]] = []
    us: list[float] = []
    for c in cases:
        prompt = prompts[c["prompt_id"]]["system_prompt"]
        req = ScanRequest(text=c["response"], direction=Direction.OUTPUT, metadata={"system_prompt": prompt})
        ctx = ScanContext(req)
        t0 = time.perf_counter()
        views = normalize(c["response"])
        leak = bool(leak_det.scan(views, ctx))
        us.append((time.perf_counter() - t0) * 1e6)
        can = any(f.rule_id == "canary.verified" and f.evidence == f"canary {prompts[c['prompt_id']]['canary_id']}"
                  for f in keyed.scan(views, ctx))
        split = c["split"]
        if c["kind"] == "leak":
            keys = [(split, c["variant"], "all"), (split, "all", "all")]
            if c["variant"] == "translated":
                keys.append((split, "translated", c["lang"]))
            for key in keys:
                by[key][0] += leak
                by[key][1] += 1
            with_canary[(split, c["variant"])][0] += leak or can
            with_canary[(split, c["variant"])][1] += 1
            if not leak and split == "eval":
                misses.append({"prompt": c["prompt_id"], "variant": c["variant"], "lang": c["lang"]})
        elif c["kind"] == "canary":
            canary[(split, "keyed:" + c["variant"])][0] += can
            canary[(split, "keyed:" + c["variant"])][1] += 1
            free = bool(keyless.scan(views, ctx))
            canary[(split, "keyless:" + c["variant"])][0] += free
            canary[(split, "keyless:" + c["variant"])][1] += 1
        else:
            flags = {"prompt_leak_output": leak, "canary": bool(keyed.scan(views, ctx) or keyless.scan(views, ctx)),
                     "exfil_output": bool(exfil.scan(views, ctx))}
            flags["any"] = any(flags.values())
            for name, hit in flags.items():
                ordinary[(split, name)][0] += hit
                ordinary[(split, name)][1] += 1
                ordinary[(split, f"{name}:{c['variant']}")][0] += hit
                ordinary[(split, f"{name}:{c['variant']}")][1] += 1
            if flags["any"]:
                false_positives.append({"prompt": c["prompt_id"], "split": split, "response": c["response"][:80],
                                        "by": [k for k, v in flags.items() if v and k != "any"]})
    out: dict[str, Any] = {"leak": {}, "leak_or_canary": {}, "ordinary_fpr": {}, "canary": {}}
    for (split, variant, lang), (h, n) in sorted(by.items()):
        out["leak"].setdefault(split, {})[variant if lang == "all" else f"translated:{lang}"] = _rate(h, n)
    for (split, variant), (h, n) in sorted(with_canary.items()):
        out["leak_or_canary"].setdefault(split, {})[variant] = _rate(h, n)
    for (split, name), (h, n) in sorted(ordinary.items()):
        out["ordinary_fpr"].setdefault(split, {})[name] = _rate(h, n)
    for (split, form), (h, n) in sorted(canary.items()):
        out["canary"].setdefault(split, {})[form] = _rate(h, n)
    for split in ("tune", "eval"):
        keyed_all = [v for k, v in canary.items() if k[0] == split and k[1].startswith("keyed:")]
        out["canary"][split]["keyed:all"] = _rate(sum(h for h, _ in keyed_all), sum(n for _, n in keyed_all))
    out["eval_misses"] = misses
    out["false_positives"] = false_positives
    out["scan_us"] = {"p50": round(statistics.median(us), 1), "p99": round(sorted(us)[int(0.99 * len(us))], 1)}
    return out


def tune(prompts: dict[str, dict[str, Any]], cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Grid search of the leak weights on the tune half: best recall with ≤ 0.5% false positives."""
    rows: list[tuple[int, list[Any]]] = []
    for c in cases:
        if c["split"] != "tune" or c["kind"] == "canary":
            continue
        prof = profile(prompts[c["prompt_id"]]["system_prompt"])
        views = normalize(c["response"])
        sims = [compare(prof, text, list_items=items)
                for _, text, _, items in PromptLeakOutputDetector._candidates(views)]
        rows.append((c["label"], sims))
    neg = sum(1 for label, _ in rows if label == 0)
    pos = len(rows) - neg
    best: tuple[Any, ...] | None = None
    grid = itertools.product((8, 10, 12, 15, 20), (0.3, 0.4, 0.5, 0.6), (0.3, 0.35, 0.4, 0.45, 0.5, 0.6),
                             (3, 4, 5, 6), (0.0, 0.1, 0.15, 0.2), (2, 3, 4, 5))
    for run, cont, dist, dmin, bonus, strong in grid:
        w = LeakWeights(run, cont, dist, dmin, bonus, strong)
        tp = fp = 0
        lo_pos, hi_neg = float("inf"), 0.0
        for label, sims in rows:
            x = max(w.ratio(s) for s in sims)
            hit = x >= 1.0
            tp += hit and label == 1
            fp += hit and label == 0
            if label == 1 and hit:
                lo_pos = min(lo_pos, x)
            if label == 0 and not hit:
                hi_neg = max(hi_neg, x)
        if fp / neg > 0.005:
            continue
        # Most recall; then fewest false positives; then the widest margin around the threshold
        # (weakest caught leak vs strongest passed answer, in log ratio).
        margin = math.log(lo_pos) - math.log(max(hi_neg, 1e-3)) if tp else 0.0
        key = (tp, -fp, round(min(math.log(lo_pos) if tp else 0.0, -math.log(max(hi_neg, 1e-3))), 3), margin,
               strong, dmin)
        if best is None or key > best[0]:
            best = (key, w, tp, fp)
    assert best is not None
    _, w, tp, fp = best
    return {"weights": {f: getattr(w, f) for f in LeakWeights.__dataclass_fields__},
            "tune_recall": round(tp / pos, 4), "tune_fpr": round(fp / neg, 4), "tune_pos": pos, "tune_neg": neg}


def _api_scanner(system_prompt: str, window: int) -> Any:
    """A stream scanner with the detectors of ``POST /v1/detect/output/stream`` (output checks and secrets)."""
    from aimds.detect.secrets import SecretsDetector
    from aimds.detect.stream import StreamScanner

    return StreamScanner([CanaryDetector(key=EVAL_KEY), PromptLeakOutputDetector(), ExfilOutputDetector(),
                          SecretsDetector()], system_prompt=system_prompt, window=window)


def hostile_costs(system_prompt: str, text: str, window: int) -> dict[str, dict[str, float]]:
    """Thread CPU time per 100-character chunk (cheap and window-completing chunks, p50 and max of one pass
    after a warm-up) on 20,000 characters of the ordinary answers rewritten the ways that cost the scanner
    most: look-alike letters, other scripts, emoji, combining marks, and encodings."""
    rng = random.Random(1)
    forms = {
        "homoglyph": text.translate(str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440"})),
        "cyrillic": ("\u041f\u043e\u0436\u0430\u043b\u0443\u0439\u0441\u0442\u0430, \u043e\u0442\u043a\u0440"
                     "\u043e\u0439\u0442\u0435 \u043f\u0440\u0438\u043b\u043e\u0436\u0435\u043d\u0438\u0435 \u0431"
                     "\u0430\u043d\u043a\u0430. " * 800)[:len(text)],
        "cjk": ("\u8bf7\u6253\u5f00\u94f6\u884c\u5e94\u7528\u7a0b\u5e8f\u5e76\u70b9\u51fb\u51bb\u7ed3\u5361"
                "\u7247\u6309\u94ae\u3002" * 1500)[:len(text)],
        "emoji": ("Great job \U0001f389 see you \U0001f44b soon \u2728 " * 1000)[:len(text)],
        "combining": "".join(c + "\u0301\u0300" if c.isalpha() and rng.random() < 0.3 else c for c in text),
        "base64": base64.b64encode(text.encode()).decode()[:len(text)],
        "hex": text.encode().hex()[:len(text)],
        "rot13": codecs.encode(text, "rot13"),
    }
    out: dict[str, dict[str, float]] = {}
    for name, form in forms.items():
        cheap: list[float] = []
        windows: list[float] = []
        for rep in range(2):
            scanner = _api_scanner(system_prompt, window)
            for i in range(0, len(form), 100):
                c0 = time.thread_time()
                r = scanner.feed(form[i:i + 100])
                dc = (time.thread_time() - c0) * 1e6
                if rep:
                    (windows if r.window_scanned else cheap).append(dc)
        cheap.sort()
        windows.sort()
        out[name] = {"cheap_p50": round(cheap[len(cheap) // 2], 1), "cheap_max": round(cheap[-1], 1),
                     "window_p50": round(windows[len(windows) // 2], 1), "window_max": round(windows[-1], 1)}
    return out


def stream_figures(prompts: dict[str, dict[str, Any]], cases: list[dict[str, Any]], window: int = 2048,
                   reps: int = 5) -> dict[str, Any]:
    """Per-chunk cost at 100-character chunks (wall and CPU time; ``reps`` measured passes over the ordinary
    answers joined, after one warm-up pass) and leak detection delay in windows, with the API's detectors."""
    answers = [c["response"] for c in cases if c["kind"] == "ordinary"]
    filler = "\n".join(answers)
    out: dict[str, Any] = {}
    warm_up()
    pid0 = next(iter(prompts))
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for rep in range(1 + reps):              # the first pass warms caches; the others are measured
        scanner = _api_scanner(prompts[pid0]["system_prompt"], window)
        for i in range(0, len(filler), 100):
            c0, t0 = time.thread_time(), time.perf_counter()
            r = scanner.feed(filler[i:i + 100])
            dt, dc = (time.perf_counter() - t0) * 1e6, (time.thread_time() - c0) * 1e6
            if rep:
                for kind in ("all_chunks", "window_chunks" if r.window_scanned else "cheap_chunks"):
                    wall.setdefault(kind, []).append(dt)
                    cpu.setdefault(kind, []).append(dc)
        scanner.close()

    def pct(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"n": len(xs), "p50": round(xs[len(xs) // 2], 1), "p99": round(xs[int(0.99 * len(xs))], 1),
                "max": round(xs[-1], 1), "mean": round(sum(xs) / len(xs), 1),
                "over_1ms": sum(x >= 1000 for x in xs)}

    kinds = ("all_chunks", "cheap_chunks", "window_chunks")
    out["chunk_us"] = {"chars": len(filler), "chunk": 100, "window": scanner.window, "overlap": scanner.overlap,
                       "passes": reps, "clock": "wall (perf_counter)", **{k: pct(wall[k]) for k in kinds}}
    out["chunk_cpu_us"] = {"clock": "thread CPU time (thread_time)", **{k: pct(cpu[k]) for k in kinds}}
    delays: dict[str, list[float]] = defaultdict(list)
    missed: dict[str, int] = defaultdict(int)
    for c in cases:
        if c["split"] != "eval" or c["label"] != 1:
            continue
        sp = prompts[c["prompt_id"]]["system_prompt"]
        scanner = _api_scanner(sp, window)
        pre = answers[hash(c["response"]) % len(answers)] + "\n\n"
        text = pre + c["response"] + "\n\n" + filler[:3000]
        leak_end = len(pre) + len(c["response"])
        name = f"{c['kind']}:{c['variant']}"
        seen_at = None
        for i in range(0, len(text), 100):
            r = scanner.feed(text[i:i + 100])
            if r.abort:
                seen_at = min(i + 100, len(text))
                break
        if seen_at is None and scanner.close().abort:
            seen_at = len(text)
        if seen_at is None:
            missed[name] += 1
        else:
            delays[name].append(max(0, seen_at - leak_end) / scanner.window)
    out["delay_windows"] = {k: {"n": len(v), "max": round(max(v), 3), "mean": round(sum(v) / len(v), 3)}
                            for k, v in sorted(delays.items())}
    out["stream_missed"] = dict(missed)
    # False aborts: every prompt's own ordinary answers (the long on-topic case), streamed, both halves.
    own: dict[str, list[str]] = defaultdict(list)
    for c in cases:
        if c["kind"] == "ordinary" and c["variant"] != "long":
            own[c["prompt_id"]].append(c["response"])
    aborted = []
    for pid, texts in sorted(own.items()):
        scanner = _api_scanner(prompts[pid]["system_prompt"], window)
        text = "\n\n".join(texts)
        if any(scanner.feed(text[i:i + 100]).abort for i in range(0, len(text), 100)) or scanner.close().abort:
            aborted.append(pid)
    out["stream_ordinary_aborted"] = f"{len(aborted)}/{len(own)}"
    out["stream_ordinary_aborted_prompts"] = aborted
    out["hostile_chunk_cpu_us"] = hostile_costs(prompts[pid0]["system_prompt"], filler[:20_000], window)
    out["max_delay_windows"] = max((max(v) for v in delays.values()), default=0.0)
    return out


def main() -> None:
    """Print the JSON report (or the tuned weights)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", action="store_true", help="choose the leak weights on the tune half")
    ap.add_argument("--write", action="store_true", help="with --tune: write them to data/output/leak.yaml")
    ap.add_argument("--no-stream", action="store_true", help="skip the streaming figures")
    ap.add_argument("--window", type=int, default=2048, help="streaming window (characters)")
    ap.add_argument("--stream-reps", type=int, default=5, help="measured passes for the per-chunk cost")
    args = ap.parse_args()
    prompts, cases = load()
    if args.tune:
        res = tune(prompts, cases)
        json.dump(res, sys.stdout, indent=1)
        print()
        if args.write:
            raw = yaml.safe_load(WEIGHTS.read_text("utf-8"))
            raw["weights"] = res["weights"]
            head = "".join(line + "\n" for line in WEIGHTS.read_text("utf-8").splitlines() if line.startswith("#"))
            WEIGHTS.write_text(head + yaml.safe_dump(raw, sort_keys=False), "utf-8")
        return
    report = evaluate(prompts, cases)
    if not args.no_stream:
        report["stream"] = stream_figures(prompts, cases, args.window, args.stream_reps)
    json.dump(report, sys.stdout, indent=1, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
