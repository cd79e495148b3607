"""In-process latency benchmark of the pipeline and of each tier (``aimds bench``)."""

from __future__ import annotations

import os
import random
import time
from importlib import resources
from typing import Any

import numpy as np
import yaml

from aimds.detect.base import ScanContext
from aimds.errors import InputError
from aimds.normalize import normalize
from aimds.pipeline import Guard
from aimds.types import ScanRequest

SIZES = (100, 1000, 10000)


def bench_texts(size: int, n: int, seed: int = 7, attack_rate: float = 0.3) -> list[str]:
    """``n`` texts of about ``size`` characters: a request and/or document paragraphs, some attacked.

    Short texts are a single request; longer ones a request (70 % of the time) followed by
    paragraphs of a document. With probability ``attack_rate`` an attack sentence is inserted at
    a random paragraph boundary.
    """
    corpus = yaml.safe_load(resources.files("aimds").joinpath("data/bench/corpus.yaml").read_text("utf-8"))
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        if size <= 200 or rng.random() < 0.7:
            parts.append(rng.choice(corpus["requests"]))
        while sum(len(p) + 2 for p in parts) < size:
            parts.append(rng.choice(corpus["paragraphs"]))
        if rng.random() < attack_rate:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(corpus["attack"]))
        text = "\n\n".join(parts)
        out.append(text[:size] if len(text) > size * 1.2 else text)
    return out


def texts_from_rows(rows: list[str], size: int, n: int, seed: int = 7) -> list[str]:
    """``n`` texts of about ``size`` characters cut from ``rows`` (e.g. a JSONL file's texts).

    Each text is random rows joined by blank lines until it reaches ``size``, then cut there, so
    every size is measured on the same kind of text as the rows, and no text repeats unless the
    rows run out.
    """
    pool = [r for r in rows if r.strip()]
    if not pool:
        raise InputError("no non-empty texts to benchmark on")
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        length = -2
        while length < size:
            parts.append(rng.choice(pool))
            length += len(parts[-1]) + 2
        out.append("\n\n".join(parts)[:size])
    return out


def _pct(samples: list[float]) -> dict[str, float]:
    return {"p50_us": round(float(np.percentile(samples, 50)), 1),
            "p99_us": round(float(np.percentile(samples, 99)), 1)}


def run_bench(guard: Guard, n: int = 300, warmup: int = 100, sizes: tuple[int, ...] = SIZES,
              rows: list[str] | None = None) -> dict[str, Any]:
    """Latency percentiles (µs) of the whole pipeline and of each tier, per text size.

    Texts come from the built-in corpus (:func:`bench_texts`) or, with ``rows``, are cut from those
    texts (:func:`texts_from_rows`): varied text builds automaton states and fills caches that the
    small built-in corpus, repeated, does not.
    """
    guard.load()
    for det in guard.detectors:  # time embeddings, not the embedding cache: bench texts repeat
        emb = getattr(getattr(det, "memory", None), "embedder", None)
        if emb is not None and hasattr(emb, "_cache_size"):
            emb._cache_size = 0
            emb._cache.clear()
    report: dict[str, Any] = {"pipeline": {}, "tiers": {}, "n": n, "warmup": warmup,
                              "texts": "built-in corpus" if rows is None else f"{len(rows)} given rows",
                              "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    for size in sizes:
        texts = bench_texts(size, n + warmup) if rows is None else texts_from_rows(rows, size, n + warmup)
        for t in texts[:warmup]:
            guard.scan(t)
        total: list[float] = []
        ran: dict[str, int] = {}
        inside: dict[str, list[float]] = {}
        for t in texts[warmup:]:
            t0 = time.perf_counter()
            verdict = guard.scan(t)
            total.append((time.perf_counter() - t0) * 1e6)
            for det in guard.detectors:
                if det.name in verdict.latency_us:
                    inside.setdefault(det.name, []).append(verdict.latency_us[det.name])
                    if det.cascade:
                        ran[det.name] = ran.get(det.name, 0) + 1
        report["pipeline"][str(size)] = _pct(total)
        # Each stage as the pipeline ran it: the first time it saw each text, between the other stages
        # (a cascade stage only where it ran). The per-tier rows below time texts already seen.
        for name, samples in inside.items():
            report.setdefault("in_pipeline", {}).setdefault(name, {})[str(size)] = _pct(samples)
        # How often each cascade stage ran in the pipeline (it is skipped when the cheap stages decide).
        report.setdefault("cascade_ran", {})[str(size)] = {
            d.name: round(ran.get(d.name, 0) / max(1, len(total)), 3) for d in guard.detectors if d.cascade}
        # Each tier alone, back to back over the same inputs (the pipeline figure above includes
        # the interference between stages; a cascade stage is timed as if it always ran).
        per: dict[str, list[float]] = {"normalize": []}
        all_views = []
        for t in texts[warmup:]:
            t0 = time.perf_counter()
            all_views.append(normalize(t, guard.limits))
            per["normalize"].append((time.perf_counter() - t0) * 1e6)
        contexts = [ScanContext(request=ScanRequest(text=t)) for t in texts[warmup:]]
        for det in guard.detectors:
            samples = per.setdefault(det.name, [])
            for views, ctx in zip(all_views, contexts, strict=True):
                ctx.scores.pop("window_embeddings", None)  # time each stage on its own (no reuse of the encoder run)
                t1 = time.perf_counter()
                det.scan(views, ctx)
                samples.append((time.perf_counter() - t1) * 1e6)
        for name, samples in per.items():
            report["tiers"].setdefault(name, {})[str(size)] = _pct(samples)
    return report


def format_bench(report: dict[str, Any]) -> str:
    """A plain-text table of a bench report."""
    sizes = list(report["pipeline"])
    head = f"{'stage':<26}" + "".join(f"{s + ' chars p50/p99 µs':>28}" for s in sizes)
    rows = [head, f"{'pipeline':<26}" + "".join(
        f"{report['pipeline'][s]['p50_us']:>17.1f} / {report['pipeline'][s]['p99_us']:<8.1f}" for s in sizes)]
    for name, per in report["tiers"].items():
        rows.append(f"{name:<26}" + "".join(f"{per[s]['p50_us']:>17.1f} / {per[s]['p99_us']:<8.1f}" for s in sizes))
    for name, per in report.get("in_pipeline", {}).items():
        if name in ("signatures", "classifier", "encoder"):
            rows.append(f"{name + ' (in pipeline)':<26}" + "".join(
                f"{per[s]['p50_us']:>17.1f} / {per[s]['p99_us']:<8.1f}" if s in per else f"{'-':>28}" for s in sizes))
    for name in next(iter(report.get("cascade_ran", {}).values()), {}):
        rows.append(f"{name + ' ran':<26}" + "".join(
            f"{report['cascade_ran'][s][name] * 100:>17.0f}%{'':<10}" for s in sizes))
    return "\n".join(rows)
