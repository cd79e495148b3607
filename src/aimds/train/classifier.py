"""Training the linear classifier (``aimds train``): MIL over windows, calibration, dev threshold.

1. Corpus: the shared ``train.jsonl`` plus our own synthetic rows (:mod:`aimds.train.augment`).
2. Features: hashed char/word n-grams of the folded view (the runtime's exact code path).
3. Multiple-instance learning: round 0 fits whole documents; each later round adds every window
   of benign documents as negatives and the highest-scoring window of each attack document as a
   positive, so an injection hidden in one paragraph of a long document is learnt.
4. Platt calibration on a held-back 10 % slice of the training data.
5. The operating threshold is chosen afterwards on dev for the whole pipeline (:mod:`aimds.train.tune`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aimds.detect.features import FeatureSpec, featurize
from aimds.detect.linear_model import ATTACK_CATEGORIES, LinearModel, windows
from aimds.normalize import normalize
from aimds.train.data import read_jsonl

Log = Callable[[str], None]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (recorded in the artifact)."""

    seed: int = 13
    dim: int = 1 << 20
    cat_dim: int = 1 << 18
    C: float = 8.0
    mil_rounds: int = 2
    window: int = 512
    stride: int = 384
    calib_fraction: float = 0.1
    synthetic: bool = True
    families: tuple[str, ...] | None = None  # augmentation families (None: aimds.train.augment.DEFAULT_FAMILIES)


def _slice_of(text: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def _matrix(texts: Sequence[str], spec: FeatureSpec, dim: int | None = None) -> Any:
    import scipy.sparse as sp

    dim = dim or spec.dim
    ind, val, ptr = [], [], [0]
    for t in texts:
        i, v = featurize(t, spec)
        if dim != spec.dim:
            i = i & (dim - 1)
        ind.append(i)
        val.append(v)
        ptr.append(ptr[-1] + len(i))
    x = sp.csr_matrix((np.concatenate(val) if val else np.zeros(0, np.float32),
                       np.concatenate(ind) if ind else np.zeros(0, np.int64), np.array(ptr)),
                      shape=(len(texts), dim))
    x.sum_duplicates()
    return x


def build_corpus(data_dir: Path, cfg: TrainConfig, log: Log = print) -> list[dict[str, Any]]:
    """Training rows: the shared training split plus synthetic rows when enabled."""
    rows = [r for r in read_jsonl(data_dir / "train.jsonl") if r.get("label") in (0, 1)]
    log(f"train.jsonl: {len(rows)} rows")
    if cfg.synthetic:
        try:
            from aimds.train.augment import generate
        except ImportError:
            log("synthetic data generator not available; training on the shared data only")
        else:
            carriers = [r["text"] for r in rows if r["label"] == 0 and 200 <= len(r["text"]) <= 4000]
            synth = generate(seed=cfg.seed, carriers=carriers, families=cfg.families)
            log(f"synthetic: {len(synth)} rows")
            rows = rows + synth
    return rows


def train_linear(rows: list[dict[str, Any]], cfg: TrainConfig, log: Log = print) -> LinearModel:
    """Fit the model on ``rows``."""
    from sklearn.linear_model import LogisticRegression

    spec = FeatureSpec(dim=cfg.dim)
    t0 = time.perf_counter()
    folded = [normalize(r["text"]).folded.text for r in rows]
    labels = np.array([int(r["label"]) for r in rows])
    calib = np.array([_slice_of(r["text"], cfg.seed) < cfg.calib_fraction for r in rows])
    fit_idx = np.flatnonzero(~calib)
    cal_idx = np.flatnonzero(calib)
    log(f"normalised {len(rows)} texts in {time.perf_counter() - t0:.1f}s; "
        f"fit {len(fit_idx)}, calibrate {len(cal_idx)}")

    docs = _matrix([folded[i] for i in fit_idx], spec)
    y_docs = labels[fit_idx]
    spans = [windows(len(folded[i]), cfg.window, cfg.stride) for i in fit_idx]
    win_texts = [folded[i][s:e] for i, sp_ in zip(fit_idx, spans, strict=True) for s, e in sp_]
    owner = np.repeat(np.arange(len(fit_idx)), [len(s) for s in spans])
    wins = _matrix(win_texts, spec)
    log(f"features: {docs.shape[0]} documents, {wins.shape[0]} windows")

    def fit(x: Any, y: np.ndarray) -> Any:
        return LogisticRegression(C=cfg.C, solver="liblinear", max_iter=5000, random_state=cfg.seed).fit(x, y)

    import scipy.sparse as sp

    model = fit(docs, y_docs)
    for rnd in range(cfg.mil_rounds):
        s = model.decision_function(wins)
        best = np.full(len(fit_idx), -1)
        best_score = np.full(len(fit_idx), -np.inf)
        for j, (o, v) in enumerate(zip(owner, s, strict=True)):
            if v > best_score[o]:
                best_score[o], best[o] = v, j
        neg = np.flatnonzero(y_docs[owner] == 0)
        pos = best[y_docs == 1]
        x = sp.vstack([docs, wins[neg], wins[pos]])
        y = np.concatenate([y_docs, np.zeros(len(neg), int), np.ones(len(pos), int)])
        model = fit(x, y)
        log(f"MIL round {rnd + 1}: {len(neg)} negative and {len(pos)} positive windows")

    weights = model.coef_.ravel().astype(np.float32)
    bias = float(model.intercept_[0])
    lm = LinearModel(spec=spec, weights=weights, bias=bias,
                     cat_weights=np.zeros((len(ATTACK_CATEGORIES), cfg.cat_dim), np.float32),
                     cat_bias=np.zeros(len(ATTACK_CATEGORIES), np.float32),
                     window=cfg.window, stride=cfg.stride)

    # Platt calibration on the held-back slice (document = max over windows).
    cal_logits = np.array([max(lm.logit(folded[i][s:e]) for s, e in windows(len(folded[i]), cfg.window, cfg.stride))
                           for i in cal_idx])
    platt = LogisticRegression(C=1e4, solver="lbfgs").fit(cal_logits.reshape(-1, 1), labels[cal_idx])
    lm.calibration = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
    log(f"calibration a={lm.calibration[0]:.3f} b={lm.calibration[1]:.3f} on {len(cal_idx)} rows")

    # Category head: multinomial model over attack rows, hashed into a smaller space.
    atk = [i for i in range(len(rows)) if labels[i] == 1 and rows[i].get("category") in ATTACK_CATEGORIES]
    if len({rows[i]["category"] for i in atk}) >= 2:
        xc = _matrix([folded[i] for i in atk], spec, cfg.cat_dim)
        yc = np.array([ATTACK_CATEGORIES.index(rows[i]["category"]) for i in atk])
        head = LogisticRegression(C=4.0, max_iter=2000, random_state=cfg.seed).fit(xc, yc)
        cw = np.zeros((len(ATTACK_CATEGORIES), cfg.cat_dim), np.float32)
        cb = np.full(len(ATTACK_CATEGORIES), -1e3, np.float32)
        for k, cls in enumerate(head.classes_):
            row = head.coef_[k] if head.coef_.shape[0] > 1 else head.coef_[0] * (1 if k else -1)
            cw[cls] = row
            cb[cls] = head.intercept_[k] if len(head.intercept_) > 1 else 0.0
        lm.cat_weights, lm.cat_bias = cw, cb
    lm.meta = {
        "trained_rows": len(rows),
        "train_config": cfg.__dict__,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }
    return lm


def train(data_dir: Path, out: Path, cfg: TrainConfig, log: Log = print) -> dict[str, Any]:
    """Full run: corpus → fit → calibrate → save (thresholds are chosen afterwards by ``aimds tune``)."""
    rows = build_corpus(data_dir, cfg, log)
    model = train_linear(rows, cfg, log)
    digest = hashlib.sha256(json.dumps(cfg.__dict__, sort_keys=True).encode()).hexdigest()[:8]
    model.meta["version"] = f"linear-{time.strftime('%Y%m%d')}-{digest}"
    model.save(out)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB), version {model.meta['version']}")
    return model.meta
