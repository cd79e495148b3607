"""Choosing operating points on dev (``aimds tune``): the fusion of the two learned models, their
thresholds and the encoder's cascade gate, for the whole default pipeline (signatures included).

The search maximises the true-positive rate subject to a false-positive budget overall and on the
hard-benign slice (ties: fewer false positives, then stricter thresholds), then prefers the highest
cascade gate (least encoder time) whose TPR is within
``slack`` of the best.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aimds.detect.classifier import threshold_score
from aimds.errors import ConfigError
from aimds.normalize import normalize
from aimds.train.data import read_jsonl

Log = Callable[[str], None]


@dataclass(frozen=True)
class TuneConfig:
    """Targets of the search."""

    target_fpr: float = 0.0095
    target_hard_fpr: float = 0.025
    slack: float = 0.01
    min_score: float = 0.05


def components(dev_path: Path, log: Log = print) -> dict[str, np.ndarray]:
    """Per-row evidence: risk from rules/signals, linear and encoder probabilities, labels."""
    from aimds.detect.base import get_detector
    from aimds.pipeline import Guard
    from aimds.respond.policy import combine

    rows = read_jsonl(dev_path)
    base = Guard(detectors=[get_detector("obfuscation")(), get_detector("signatures")()]).load()
    lin = get_detector("classifier")()
    lin.load()
    enc = get_detector("encoder")(always=True)
    enc.load()
    sig, p_lin, p_enc = [], [], []
    t0 = time.perf_counter()
    for r in rows:
        v = base.scan(r["text"])
        sig.append(combine(v.findings, 0.05) if v.flagged else combine(
            [f for f in v.findings if f.category.value != "obfuscation"], 0.05))
        views = normalize(r["text"])
        p_lin.append(lin.probability(views)[0])
        p_enc.append(max(p for _, _, p in enc.model.window_scores(views.folded.text)))
    log(f"scored {len(rows)} dev rows in {time.perf_counter() - t0:.1f}s")
    return {
        "sig": np.array(sig), "lin": np.array(p_lin), "enc": np.array(p_enc),
        "y": np.array([int(r["label"]) for r in rows]),
        "hard": np.array([r.get("category") == "benign_hard" for r in rows]),
    }


def _scores(p: np.ndarray, t: float, floor: float) -> np.ndarray:
    s = np.array([threshold_score(x, t) for x in p])
    return np.where(s >= floor, s, 0.0)


def _grid(neg_scores: np.ndarray, quantiles: list[float]) -> np.ndarray:
    """Candidate thresholds: quantiles of the benign scores, plus just above the highest one."""
    top = min(float(neg_scores.max()) + 1e-6, 1 - 1e-6)
    return np.unique(np.concatenate([np.quantile(neg_scores, quantiles), [top]]))


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, clipped away from 0 and 1."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fusion_features(p_lin: np.ndarray, p_enc: np.ndarray) -> np.ndarray:
    """Inputs of the fusion model: both log-odds and their (scaled) product."""
    a, b = logit(p_lin), logit(p_enc)
    return np.c_[a, b, a * b / 10]


def search(c: dict[str, np.ndarray], monitor: float, cfg: TuneConfig, decided: float = 0.75,
           folds: int = 5, seed: int = 13) -> dict[str, Any]:
    """Grid search over (linear threshold, fused threshold, cascade gate) with a fusion model.

    The fusion model (logistic regression on the two models' log-odds) is fitted on dev; the
    thresholds are searched on its out-of-fold predictions so that they are not fitted to the
    very rows they are judged on. Texts the gate skips get the encoder probability ``impute``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y, hard = c["y"], c["hard"]
    neg = y == 0
    impute = float(np.quantile(c["enc"][neg], 0.5))
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(c["lin"], y))
    fold_models = [LogisticRegression(C=1.0).fit(fusion_features(c["lin"][tr], c["enc"][tr]), y[tr])
                   for tr, _ in splits]
    final = LogisticRegression(C=1.0).fit(fusion_features(c["lin"], c["enc"]), y)
    t_lin_grid = _grid(c["lin"][neg], [0.98, 0.99, 0.993, 0.996, 0.998, 0.999])
    gates = [0.0, 0.001, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1]
    per_gate: dict[float, dict[str, Any]] = {}
    for gate in gates:
        for tl in t_lin_grid:
            s_lin = _scores(c["lin"], float(tl), cfg.min_score)
            prior = 1 - (1 - c["sig"]) * (1 - s_lin)
            run = ((c["lin"] >= gate) | (prior > 0)) & (prior < decided)
            enc_eff = np.where(run, c["enc"], impute)
            fused = np.zeros(len(y))
            for (_, te), m in zip(splits, fold_models, strict=True):
                fused[te] = m.predict_proba(fusion_features(c["lin"][te], enc_eff[te]))[:, 1]
            for tf in _grid(fused[neg], [0.97, 0.98, 0.985, 0.99, 0.993, 0.995, 0.997]):
                s_f = np.where(run, _scores(fused, float(tf), cfg.min_score), 0.0)
                flagged = 1 - (1 - prior) * (1 - s_f) >= monitor
                fpr = flagged[neg].mean()
                hfpr = flagged[hard].mean() if hard.any() else 0.0
                if fpr > cfg.target_fpr or hfpr > cfg.target_hard_fpr:
                    continue
                tpr = float(flagged[~neg].mean())
                # ties on TPR go to the fewer false positives (then the stricter thresholds, found later)
                if gate not in per_gate or (tpr, -fpr, -hfpr) >= (per_gate[gate]["tpr"], -per_gate[gate]["fpr"],
                                                                 -per_gate[gate]["hard_fpr"]):
                    per_gate[gate] = {"classifier_threshold": float(tl), "encoder_threshold": float(tf),
                                      "cascade_gate": gate, "cascade_decided": decided, "tpr": tpr,
                                      "fpr": float(fpr), "hard_fpr": float(hfpr), "encoder_share": float(run.mean()),
                                      "encoder_share_benign": float(run[neg].mean())}
    if not per_gate:
        raise ConfigError(f"no operating point keeps the false-positive rate under {cfg.target_fpr} "
                          f"(hard benign {cfg.target_hard_fpr}); raise --target-fpr or improve the models")
    best_tpr = max(r["tpr"] for r in per_gate.values())
    best = max((r for r in per_gate.values() if r["tpr"] >= best_tpr - cfg.slack), key=lambda r: r["cascade_gate"])
    # The linear model's threshold for pipelines without the encoder (the fast profile).
    alone = []
    for tl in _grid(c["lin"][neg], [0.95, 0.97, 0.98, 0.99, 0.993, 0.996, 0.998, 0.999]):
        flagged = 1 - (1 - c["sig"]) * (1 - _scores(c["lin"], float(tl), cfg.min_score)) >= monitor
        if flagged[neg].mean() <= cfg.target_fpr and (flagged[hard].mean() if hard.any() else 0.0) \
                <= cfg.target_hard_fpr:
            alone.append((float(flagged[~neg].mean()), float(tl), float(flagged[neg].mean())))
    if alone:
        tpr_alone, t_alone, fpr_alone = max(alone)
        best["classifier_threshold_alone"] = t_alone
        best["alone"] = {"tpr": tpr_alone, "fpr": fpr_alone}
    best["fusion"] = {"w_lin": float(final.coef_[0, 0]), "w_enc": float(final.coef_[0, 1]),
                      "w_both": float(final.coef_[0, 2]), "bias": float(final.intercept_[0])}
    return best


def tune(dev_path: Path, out: Path, cfg: TuneConfig | None = None, log: Log = print) -> dict[str, Any]:
    """Score dev, search, and write the operating points file."""
    from aimds.respond.policy import Policy

    cfg = cfg or TuneConfig()
    c = components(dev_path, log)
    best = search(c, Policy.load().monitor, cfg)
    doc = {
        "version": 1,
        "classifier_threshold": round(best["classifier_threshold"], 6),
        "encoder_threshold": round(best["encoder_threshold"], 6),
        "cascade_gate": best["cascade_gate"],
        "cascade_decided": best["cascade_decided"],
        "fusion": {k: round(v, 6) for k, v in best["fusion"].items()},
        "classifier_threshold_alone": round(best.get("classifier_threshold_alone", best["classifier_threshold"]), 6),
        "tuned_on": dev_path.name,
        "tuned_at": time.strftime("%Y-%m-%d"),
        "dev": {k: round(best[k], 4) for k in ("tpr", "fpr", "hard_fpr", "encoder_share", "encoder_share_benign")},
        "dev_without_encoder": {k: round(v, 4) for k, v in best.get("alone", {}).items()},
        "targets": {"fpr": cfg.target_fpr, "hard_fpr": cfg.target_hard_fpr},
    }
    out.write_text("# Operating points chosen on dev by `aimds tune` (regenerate, do not edit by hand).\n"
                   + yaml.safe_dump(doc, sort_keys=False), "utf-8")
    log(f"operating points: {doc}")
    return doc
