"""The student of ``benchmarks/distilled_gate.py``: its hand-written gradients and its metrics are right."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.helpers import load_file_module

gate = load_file_module("benchmarks/distilled_gate.py", "distilled_gate")


def _toy(seed: int = 0, n: int = 40) -> tuple[object, list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((30, 4)).astype(np.float64)
    emb[0] = 0.0
    student = gate.Student(emb, filters=5, seed=seed)
    for name in ("w", "b", "v", "c"):  # float64 for a tight finite-difference check
        setattr(student, name, getattr(student, name).astype(np.float64))
    student.b += rng.standard_normal(5)  # some filters active, some not
    student.v = rng.standard_normal(5)
    ids = [rng.integers(1, 30, size=int(rng.integers(1, 9))) for _ in range(n)]
    return student, ids, rng.standard_normal(n) * 3, rng.integers(0, 2, size=n).astype(np.float64)


def test_gradients_match_finite_differences() -> None:
    student, ids, target, labels = _toy()
    _, grads = student.loss_and_grads(ids, target, labels)
    eps = 1e-6
    for param, grad in zip((student.w, student.b, student.v, student.c), grads, strict=True):
        flat, gflat = param.reshape(-1), np.asarray(grad).reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 12)):
            old = flat[i]
            flat[i] = old + eps
            up, _ = student.loss_and_grads(ids, target, labels)
            flat[i] = old - eps
            down, _ = student.loss_and_grads(ids, target, labels)
            flat[i] = old
            assert gflat[i] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-7)


def test_student_learns_a_token_that_marks_attacks() -> None:
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((50, 16)).astype(np.float32)
    emb[0] = 0.0
    ids = [rng.integers(1, 50, size=int(rng.integers(5, 30))) for _ in range(400)]
    labels = np.array([float(7 in a) for a in ids])
    student = gate.Student(emb, filters=16, seed=1)
    before = roc_auc_score(labels, student.predict(ids))
    student.fit(ids, np.where(labels > 0, 6.0, -6.0), labels, epochs=10, batch=16, lr=3e-2)
    after = student.predict(ids)
    assert roc_auc_score(labels, after) > max(0.97, before)
    assert after[labels == 1].mean() > 0 > after[labels == 0].mean()


def test_auc_and_tpr_helpers_agree_with_definitions() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=300)
    scores = np.round(rng.standard_normal(300) + y, 1)  # rounded: ties on purpose
    assert gate.auc(scores, y) == pytest.approx(roc_auc_score(y, scores))
    t = gate.tpr_at(scores, y, 0.1)
    thr = np.quantile(scores[y == 0], 0.9)
    assert t == pytest.approx((scores[y == 1] > thr).mean())
    assert gate.row_max(np.array([1.0, 5.0, 2.0]), np.array([0, 0, 1]), 3).tolist() == [5.0, 2.0, -1e9]
