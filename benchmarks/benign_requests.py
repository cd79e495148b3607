"""False positives on realistic benign user requests, and the TPR cost, for the default and fast profiles.

Reads ``benchmarks/data/benign_requests.jsonl`` (written by hand for this benchmark, held out from
every training template: short questions, task requests with pasted content, translation,
proofreading, role-play practice, lesson planning, support messages, coding help, several languages;
plus attacks in the same styles) and prints JSON; it is also run with ``--data
benchmarks/data/attack_styles.jsonl``, a held-out probe of 20 attack styles (8 attacks and 5 benign
near-misses each, written 2026-11-26, never trained or tuned on), with
``benchmarks/data/secret_extraction.jsonl`` (secret-extraction requests and password near-misses in 15
languages, written by a helper that never saw the rules or ran the detector) and with
``benchmarks/data/multilingual_intents.jsonl`` (ten injection intents and benign near-misses in 15 languages,
written the same way) and with ``benchmarks/data/context_extraction.jsonl`` (eight ways of extracting the
guarded secret or the user's personal data from the context, and near-misses, in 16 languages, written the
same way):

- per profile (``default``, ``fast``): on the benign rows the flagged rate (action not ``allow``)
  and blocked rate (action ``block``), per style (or intent) and language, and the ids flagged; on
  the attack rows the TPR (flagged) and the block rate, per style and language, and the ids missed;
- ``load_texts``: the same two rates on the benign items of ``benchmarks/data/load_texts.json``;
- ``dev``: ``aimds eval``'s TPR/FPR on ``../shared/datasets/dev.jsonl`` per profile (``--no-dev``
  skips it; it takes a few minutes on two cores).

    .venv/bin/python benchmarks/benign_requests.py [--json OUT] [--no-dev] [--profiles default,fast]

Candidates, without touching the shipped files: ``--classifier-model F.npz`` (from ``aimds train
--out``), ``--encoder-model DIR`` (from ``scripts/refit_encoder_head.py install --dir``),
``--operating-points F.yaml``, or ``--retune F.yaml`` (run ``aimds tune``'s search with the
candidate models on dev, write F.yaml and use it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from aimds import Guard, Settings
from aimds.eval.metrics import evaluate
from aimds.types import Action, ScanRequest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "benign_requests.jsonl"
LOAD_TEXTS = ROOT / "benchmarks" / "data" / "load_texts.json"
DEV = ROOT.parent / "shared" / "datasets" / "dev.jsonl"
PROFILES = {"default": None, "fast": ("obfuscation", "signatures", "classifier")}


def use_candidates(classifier: Path | None, encoder: Path | None, ops: Path | None) -> None:
    """Point the default model paths of this process at candidate files (shipped files untouched)."""
    import aimds.detect.encoder as enc_mod
    import aimds.detect.linear_model as lin_mod
    import aimds.detect.operating_points as ops_mod

    if classifier is not None:
        lin_mod.default_model_path = lambda: classifier  # type: ignore[assignment]
    if encoder is not None:
        enc_mod.DEFAULT_MODEL_DIR = encoder
    if ops is not None:
        ops_mod.default_path = lambda: ops  # type: ignore[assignment]
        ops_mod.operating_points.cache_clear()


def load_rows(path: Path = DATA) -> list[dict[str, Any]]:
    """The benchmark rows (``id, text, label, category, style, lang[, task]``)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def make_guard(profile: str) -> Guard:
    """A loaded Guard for ``default`` (shipped settings) or ``fast`` (no transformer stage)."""
    dets = PROFILES[profile]
    return Guard(Settings(detectors=dets) if dets else Settings()).load()


def _rates(flags: list[tuple[bool, bool]]) -> dict[str, Any]:
    n = len(flags)
    return {"n": n, "flagged": sum(f for f, _ in flags), "blocked": sum(b for _, b in flags),
            "flagged_rate": round(sum(f for f, _ in flags) / n, 4) if n else 0.0,
            "blocked_rate": round(sum(b for _, b in flags) / n, 4) if n else 0.0}


def score_rows(guard: Guard, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Flagged/blocked rates on the benign rows and TPR on the attack rows, overall, per style (or
    ``intent``, or ``technique``) and per language."""
    by: dict[tuple[int, str], list[tuple[bool, bool]]] = defaultdict(list)
    by_lang: dict[tuple[int, str], list[tuple[bool, bool]]] = defaultdict(list)
    flagged_ids: list[dict[str, Any]] = []
    missed_ids: list[str] = []
    for r in rows:
        v = guard.scan(ScanRequest(text=r["text"]))
        f, b = v.flagged, v.action is Action.BLOCK
        by[(r["label"], r.get("style") or r.get("intent") or r.get("technique", ""))].append((f, b))
        by_lang[(r["label"], r.get("lang", ""))].append((f, b))
        if r["label"] == 0 and f:
            top = max(v.findings, key=lambda x: x.score)
            flagged_ids.append({"id": r["id"], "action": v.action.value, "risk": round(v.risk, 3),
                                "detector": top.detector})
        if r["label"] == 1 and not f:
            missed_ids.append(r["id"])
    out: dict[str, Any] = {}
    for label, name in ((0, "benign"), (1, "attacks")):
        allf = [x for (lab, _), v in by.items() if lab == label for x in v]
        rep = _rates(allf)
        if label == 1:
            rep["tpr"] = rep["flagged_rate"]
        rep["by_style"] = {s: _rates(v) for (lab, s), v in sorted(by.items()) if lab == label}
        rep["by_lang"] = {s: _rates(v) for (lab, s), v in sorted(by_lang.items()) if lab == label}
        out[name] = rep
    out["benign"]["flagged_ids"] = flagged_ids
    out["attacks"]["missed_ids"] = missed_ids
    return out


def load_text_rates(guard: Guard) -> dict[str, Any]:
    """Flagged/blocked rates on the benign items of the load benchmark's texts."""
    items = json.loads(LOAD_TEXTS.read_text(encoding="utf-8"))["items"]
    flags = []
    for it in items:
        if it["label"] == "benign":
            v = guard.scan(it["text"])
            flags.append((v.flagged, v.action is Action.BLOCK))
    return _rates(flags)


def main(argv: list[str] | None = None) -> int:
    """Command line: print (and optionally write) the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--no-dev", action="store_true", help="skip the dev-set TPR/FPR")
    ap.add_argument("--profiles", default="default,fast")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--classifier-model", type=Path, help="candidate linear model (.npz)")
    ap.add_argument("--encoder-model", type=Path, help="candidate encoder folder")
    ap.add_argument("--operating-points", type=Path, help="candidate operating_points.yaml")
    ap.add_argument("--retune", type=Path, help="tune on dev with the candidate models, write here, use it")
    args = ap.parse_args(argv)
    use_candidates(args.classifier_model, args.encoder_model, args.operating_points)
    if args.retune:
        from aimds.train.tune import tune

        tune(DEV, args.retune, log=lambda m: print(m, file=sys.stderr))
        use_candidates(None, None, args.retune)
    rows = load_rows(args.data)
    report: dict[str, Any] = {"data": str(args.data.relative_to(ROOT)) if args.data.is_relative_to(ROOT)
                              else str(args.data), "profiles": {},
                              "candidates": {k: str(v) for k, v in (("classifier", args.classifier_model),
                                                                    ("encoder", args.encoder_model),
                                                                    ("operating_points", args.retune or
                                                                     args.operating_points)) if v}}
    for profile in args.profiles.split(","):
        t0 = time.perf_counter()
        guard = make_guard(profile)
        rep = score_rows(guard, rows)
        rep["load_texts_benign"] = load_text_rates(guard)
        if not args.no_dev and DEV.is_file():
            with DEV.open(encoding="utf-8") as f:
                dev = evaluate(guard, (json.loads(line) for line in f if line.strip()))
            rep["dev"] = {k: dev["overall"][k] for k in ("tpr", "fpr", "balanced_accuracy")}
        rep["versions"] = guard.versions
        rep["secs"] = round(time.perf_counter() - t0, 1)
        report["profiles"][profile] = rep
        print(f"{profile}: benign blocked {rep['benign']['blocked']}/{rep['benign']['n']} flagged "
              f"{rep['benign']['flagged']}, attacks caught {rep['attacks']['flagged']}/{rep['attacks']['n']}"
              + (f", dev TPR {rep['dev']['tpr']} FPR {rep['dev']['fpr']}" if "dev" in rep else ""),
              file=sys.stderr)
    text = json.dumps(report, indent=1, ensure_ascii=False)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
