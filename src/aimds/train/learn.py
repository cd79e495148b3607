"""``aimds learn``: re-fit the linear classifier on the shipped data plus accepted feedback, recalibrate
its operating points on dev, and write a new versioned model beside the store.

1. **Feedback**: the store's active, non-seed memory exemplars (what analysts applied and what they
   accepted from the review queue), attacks as label 1 and allow-exemplars as label 0. The store keeps
   the raw text only when the deployment stores raw text (``store_raw_text``); otherwise the exemplar's
   redacted excerpt (≤ 120 characters, secrets masked) is what can be learnt from. The manifest says
   how many of each were used.
2. A seeded hash split holds back ``holdout`` of the feedback; the rest joins the training corpus
   (the shared ``train.jsonl`` + our generator, as ``aimds train``), each row ``feedback_weight`` times.
3. Training is :func:`aimds.train.classifier.train_linear` (seeded, reproducible); the operating points
   are searched on dev by :func:`aimds.train.tune.search`. The encoder and the signatures do not change,
   so their dev evidence is computed once and cached under ``models/.cache``.
4. Before/after metrics of the whole default pipeline (signatures + classifier + encoder cascade, the
   same arithmetic as ``aimds tune``) on dev and on the held-back feedback, parent version vs new.
5. Output: ``<data_dir>/models/<version>/{linear.npz, operating_points.yaml, manifest.json}``; the
   version is registered in the store (audited) and activated only when asked.

``quick`` trains on a seeded ~1,500-row subset without synthetic rows and tunes on ~300 dev rows: for
tests and smoke runs, not for production models.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aimds.detect.classifier import threshold_score
from aimds.detect.linear_model import LinearModel, default_model_path
from aimds.detect.operating_points import default_path as default_points_path
from aimds.detect.operating_points import operating_points
from aimds.errors import InputError
from aimds.normalize import normalize
from aimds.store.models import MANIFEST, MODEL_FILE, POINTS_FILE, SHIPPED, ModelRegistry, sha256_file, version_dir
from aimds.store.sqlite import SQLiteStore
from aimds.train.classifier import TrainConfig, _slice_of, build_corpus, train_linear
from aimds.train.data import read_jsonl
from aimds.train.tune import TuneConfig, search

Log = Callable[[str], None]
CACHE_DIR = ".cache"


@dataclass(frozen=True)
class LearnConfig:
    """Options of one ``aimds learn`` run (recorded in the manifest)."""

    holdout: float = 0.2
    seed: int = 13
    quick: bool = False
    feedback_weight: int = 5
    quick_train_rows: int = 1500
    quick_dev_rows: int = 300
    target_fpr: float = 0.0095
    target_hard_fpr: float = 0.025


# ----------------------------------------------------------------------------- feedback
def collect_feedback(store: SQLiteStore) -> list[dict[str, Any]]:
    """Accepted feedback as labelled rows: ``{"text", "label", "category", "id", "text_source"}``.

    Seed exemplars (the shipped training attacks, stored without text) are skipped; exemplars whose text
    was not stored contribute their redacted excerpt.
    """
    from aimds.store.memory import MemoryStore

    MemoryStore(store)  # creates the tables on a fresh store
    rows = store.reader().execute(
        "SELECT id, kind, category, text, excerpt FROM memory_exemplars WHERE status = 'active'"
        " AND source NOT LIKE 'seed:%' ORDER BY rid").fetchall()
    out = []
    for eid, kind, category, text, exc in rows:
        body, src = (text, "raw") if text else (exc, "excerpt")
        if not body or not body.strip():
            continue
        out.append({"id": eid, "text": body, "label": 1 if kind == "attack" else 0,
                    "category": (category or "prompt_injection") if kind == "attack" else "benign",
                    "source": f"feedback:{src}", "text_source": src})
    return out


def split_feedback(rows: Sequence[dict[str, Any]], holdout: float, seed: int
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held back): the ``holdout`` share of rows with the lowest seeded hash of their text.

    Stable (the same feedback always splits the same way) and, with two rows or more and a positive
    ``holdout``, never leaves either side empty.
    """
    n = len(rows)
    k = 0 if holdout <= 0 or n < 2 else min(n - 1, max(1, round(n * holdout)))
    ranked = sorted(range(n), key=lambda i: (_slice_of(rows[i]["text"], seed + 1), str(rows[i]["id"])))
    held_idx = set(ranked[:k])
    return ([dict(r) for i, r in enumerate(rows) if i not in held_idx],
            [dict(r) for i, r in enumerate(rows) if i in held_idx])


# ----------------------------------------------------------------------------- evidence
@dataclass
class Evidence:
    """Per-row evidence of the fixed stages (rules/signals, encoder) and the labels."""

    sig: np.ndarray
    enc: np.ndarray
    y: np.ndarray
    hard: np.ndarray

    def with_lin(self, lin: np.ndarray) -> dict[str, np.ndarray]:
        """The component mapping :func:`aimds.train.tune.search` expects."""
        return {"sig": self.sig, "enc": self.enc, "lin": lin, "y": self.y, "hard": self.hard}


@cache
def _fixed_stages() -> tuple[Any, Any]:
    """The rules/signals guard and the always-on encoder (loaded once per process)."""
    from aimds.detect.base import get_detector
    from aimds.pipeline import Guard

    base = Guard(detectors=[get_detector("obfuscation")(), get_detector("signatures")()]).load()
    enc = get_detector("encoder")(always=True)
    enc.load()
    return base, enc


def fixed_evidence(texts: Sequence[str], labels: Sequence[int], hard: Sequence[bool]) -> Evidence:
    """Signature/obfuscation risk and encoder probability of each text (the stages learning leaves alone)."""
    from aimds.respond.policy import combine

    base, enc = _fixed_stages()
    sig, p_enc = [], []
    for t in texts:
        v = base.scan(t)
        sig.append(combine(v.findings, 0.05) if v.flagged else combine(
            [f for f in v.findings if f.category.value != "obfuscation"], 0.05))
        p_enc.append(max(p for _, _, p in enc.model.window_scores(normalize(t).folded.text)))
    return Evidence(np.array(sig, dtype=float), np.array(p_enc, dtype=float), np.array(labels, dtype=int),
                    np.array(hard, dtype=bool))


def cached_evidence(texts: Sequence[str], labels: Sequence[int], hard: Sequence[bool], cache_dir: Path | None,
                    log: Log = print) -> Evidence:
    """:func:`fixed_evidence`, cached by the texts, labels and the fixed stages' versions."""
    base, enc = _fixed_stages()
    h = hashlib.sha256(json.dumps([base.versions, enc.version(), enc.model.meta.get("sha256")],
                                  sort_keys=True).encode())
    for t, y, hd in zip(texts, labels, hard, strict=True):
        h.update(f"{y}{int(hd)}\0{t}\0".encode("utf-8", "surrogatepass"))
    path = cache_dir / f"evidence-{h.hexdigest()[:20]}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return Evidence(z["sig"], z["enc"], z["y"], z["hard"])
    t0 = time.perf_counter()
    ev = fixed_evidence(texts, labels, hard)
    log(f"scored {len(texts)} rows with the signatures and the encoder in {time.perf_counter() - t0:.1f}s")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, sig=ev.sig, enc=ev.enc, y=ev.y, hard=ev.hard)
        tmp.replace(path)
    return ev


def linear_probabilities(model: LinearModel, texts: Sequence[str]) -> np.ndarray:
    """The classifier detector's document probability (max over windows and views) for each text."""
    from aimds.detect.classifier import ClassifierDetector

    det = ClassifierDetector()
    return np.array([det.probability(normalize(t), model=model)[0] for t in texts], dtype=float)


def _fuse(p_lin: np.ndarray, p_enc: np.ndarray, fusion: Mapping[str, float]) -> np.ndarray:
    if not fusion:
        return p_enc
    from aimds.train.tune import logit

    a, b = logit(p_lin), logit(p_enc)
    z = fusion["bias"] + fusion["w_lin"] * a + fusion["w_enc"] * b + fusion["w_both"] * a * b / 10
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def flagged_with(c: Mapping[str, np.ndarray], ops: Mapping[str, Any], monitor: float,
                 min_score: float = 0.05) -> np.ndarray:
    """Which rows the default pipeline flags with operating points ``ops`` (``aimds tune``'s arithmetic)."""
    def scores(p: np.ndarray, t: float) -> np.ndarray:
        s = np.array([threshold_score(float(x), t) for x in p])
        return np.where(s >= min_score, s, 0.0)

    s_lin = scores(c["lin"], float(ops["classifier_threshold"]))
    prior = 1 - (1 - c["sig"]) * (1 - s_lin)
    run = ((c["lin"] >= float(ops.get("cascade_gate", 0.0))) | (prior > 0)) & (
        prior < float(ops.get("cascade_decided", 1.0)))
    fused = _fuse(c["lin"], c["enc"], ops.get("fusion") or {})
    s_f = np.where(run, scores(fused, float(ops["encoder_threshold"])), 0.0)
    return np.asarray(1 - (1 - prior) * (1 - s_f) >= monitor)


def rates(flagged: np.ndarray, y: np.ndarray, hard: np.ndarray | None = None) -> dict[str, Any]:
    """TPR on label-1 rows, FPR on label-0 rows (and on the hard-benign slice), with counts."""
    pos, neg = y == 1, y == 0
    out: dict[str, Any] = {"n_attack": int(pos.sum()), "n_benign": int(neg.sum()),
                           "tpr": round(float(flagged[pos].mean()), 4) if pos.any() else None,
                           "fpr": round(float(flagged[neg].mean()), 4) if neg.any() else None}
    if hard is not None and hard.any():
        out["hard_fpr"] = round(float(flagged[hard].mean()), 4)
    return out


# ----------------------------------------------------------------------------- the run
def _subset(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A seeded, stable subset of about ``n`` rows (by hash of the text)."""
    if len(rows) <= n:
        return rows
    # salted: the calibration slice of train_linear hashes with the plain seed, so the same ranking
    # would put every kept row in it
    ranked = sorted(rows, key=lambda r: _slice_of(r["text"], seed * 7919 + 104729))
    return ranked[:n]


def parent_model(registry: ModelRegistry) -> tuple[str, LinearModel, dict[str, Any]]:
    """The active version (the new one's parent): its name, model and operating points."""
    active = registry.active()
    if active == SHIPPED:
        return SHIPPED, LinearModel.load(default_model_path()), dict(operating_points())
    folder = version_dir(registry.data_dir, active)
    return active, LinearModel.load(folder / MODEL_FILE), dict(operating_points(str(folder / POINTS_FILE)))


def model_digest(model: LinearModel) -> str:
    """sha256 of the model's stored weights (the same bytes ``LinearModel.save`` checksums)."""
    w16, c16 = model.weights.astype(np.float16), model.cat_weights.astype(np.float16)
    return hashlib.sha256(w16.tobytes() + c16.tobytes()).hexdigest()


def learn(store: SQLiteStore, datasets: Path, cfg: LearnConfig, *, actor: str = "cli", activate: bool = False,
          log: Log = print) -> dict[str, Any]:
    """One learning run; returns the manifest (with before/after metrics) of the new version."""
    from aimds.respond.policy import Policy

    t_start = time.perf_counter()
    registry = ModelRegistry(store)
    parent, parent_lm, parent_ops = parent_model(registry)
    feedback = collect_feedback(store)
    fb_train, fb_held = split_feedback(feedback, cfg.holdout, cfg.seed)
    log(f"feedback: {len(feedback)} exemplars ({sum(r['text_source'] == 'raw' for r in feedback)} raw texts, "
        f"{sum(r['text_source'] == 'excerpt' for r in feedback)} redacted excerpts); "
        f"train {len(fb_train)}, held back {len(fb_held)}")

    # quick: a smaller hashed space and one MIL round (a smoke-test model, not a production one)
    tcfg = TrainConfig(seed=cfg.seed, synthetic=False, dim=1 << 18, cat_dim=1 << 16, mil_rounds=1) if cfg.quick \
        else TrainConfig(seed=cfg.seed)
    if not (datasets / "train.jsonl").is_file() or not (datasets / "dev.jsonl").is_file():
        raise InputError(f"{datasets} needs train.jsonl and dev.jsonl")
    rows = build_corpus(datasets, tcfg, log)
    if cfg.quick:
        rows = _subset(rows, cfg.quick_train_rows, cfg.seed)
    train_rows = rows + [dict(r) for r in fb_train for _ in range(max(1, cfg.feedback_weight))]
    model = train_linear(train_rows, tcfg, log)

    dev_rows = [r for r in read_jsonl(datasets / "dev.jsonl") if r.get("label") in (0, 1)]
    if cfg.quick:
        dev_rows = _subset(dev_rows, cfg.quick_dev_rows, cfg.seed)
    cache = store.data_dir / "models" / CACHE_DIR
    dev_texts = [r["text"] for r in dev_rows]
    dev = cached_evidence(dev_texts, [int(r["label"]) for r in dev_rows],
                          [r.get("category") == "benign_hard" for r in dev_rows], cache, log)
    lin_new, lin_old = linear_probabilities(model, dev_texts), linear_probabilities(parent_lm, dev_texts)
    monitor = Policy.load().monitor
    tune_cfg = TuneConfig(target_fpr=cfg.target_fpr, target_hard_fpr=cfg.target_hard_fpr)
    best = search(dev.with_lin(lin_new), monitor, tune_cfg, seed=cfg.seed)
    ops = {
        "version": 1,
        "classifier_threshold": round(best["classifier_threshold"], 6),
        "encoder_threshold": round(best["encoder_threshold"], 6),
        "cascade_gate": best["cascade_gate"],
        "cascade_decided": best["cascade_decided"],
        "fusion": {k: round(v, 6) for k, v in best["fusion"].items()},
        "classifier_threshold_alone": round(best.get("classifier_threshold_alone", best["classifier_threshold"]), 6),
        "tuned_on": "dev.jsonl" + (f" (quick subset of {len(dev_rows)})" if cfg.quick else ""),
        "tuned_at": time.strftime("%Y-%m-%d"),
        "dev": {k: round(best[k], 4) for k in ("tpr", "fpr", "hard_fpr", "encoder_share", "encoder_share_benign")},
        "targets": {"fpr": cfg.target_fpr, "hard_fpr": cfg.target_hard_fpr},
    }
    metrics: dict[str, Any] = {
        "dev": {"before": rates(flagged_with(dev.with_lin(lin_old), parent_ops, monitor), dev.y, dev.hard),
                "after": rates(flagged_with(dev.with_lin(lin_new), ops, monitor), dev.y, dev.hard)},
    }
    if fb_held:
        held_texts = [r["text"] for r in fb_held]
        held = fixed_evidence(held_texts, [r["label"] for r in fb_held], [False] * len(fb_held))
        metrics["feedback_holdout"] = {
            "before": rates(flagged_with(held.with_lin(linear_probabilities(parent_lm, held_texts)), parent_ops,
                                         monitor), held.y),
            "after": rates(flagged_with(held.with_lin(linear_probabilities(model, held_texts)), ops, monitor),
                           held.y)}
    else:
        metrics["feedback_holdout"] = None

    digest = model_digest(model)
    version = f"lm-{time.strftime('%Y%m%d')}-{digest[:12]}"
    model.meta.update({"version": version, "parent": parent, "learn_config": asdict(cfg),
                       "feedback_rows": len(fb_train)})
    folder = version_dir(store.data_dir, version)
    manifest: dict[str, Any]
    if (folder / MANIFEST).is_file():  # the same inputs and seed give the same weights: nothing new to write
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
        log(f"version {version} already exists (same data, feedback and seed)")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / MODEL_FILE)
        (folder / POINTS_FILE).write_text("# Operating points chosen on dev by `aimds learn` (regenerate, do not "
                                          "edit by hand).\n" + yaml.safe_dump(ops, sort_keys=False), "utf-8")
        operating_points(str(folder / POINTS_FILE))  # validates the file
        manifest = {
            "version": version, "parent": parent, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "created_by": actor, "weights_sha256": digest,
            "files": {MODEL_FILE: sha256_file(folder / MODEL_FILE), POINTS_FILE: sha256_file(folder / POINTS_FILE)},
            "config": asdict(cfg), "train_config": dict(tcfg.__dict__),
            "data": {"train_rows": len(rows), "dev_rows": len(dev_rows),
                     "train_sha256": sha256_file(datasets / "train.jsonl"),
                     "dev_sha256": sha256_file(datasets / "dev.jsonl"),
                     "shipped_points_sha256": sha256_file(default_points_path())},
            "feedback": {"total": len(feedback), "train": len(fb_train), "held_back": len(fb_held),
                         "raw_texts": sum(r["text_source"] == "raw" for r in feedback),
                         "redacted_excerpts": sum(r["text_source"] == "excerpt" for r in feedback),
                         "attack": sum(r["label"] == 1 for r in feedback),
                         "benign": sum(r["label"] == 0 for r in feedback),
                         "exemplar_ids_sha256": hashlib.sha256(
                             "\n".join(sorted(r["id"] for r in feedback)).encode()).hexdigest()},
            "operating_points": ops,
            "metrics": metrics,
            "seconds": round(time.perf_counter() - t_start, 1),
        }
        tmp = folder / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", "utf-8")
        tmp.replace(folder / MANIFEST)
    registry.register(manifest, actor)
    if activate:
        registry.activate(version, actor, reason="learn")
    return {**manifest, "active": registry.active(), "metrics": metrics}

