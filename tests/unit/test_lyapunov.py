"""Lyapunov exponent and stability class against series whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aimds.analyze.lyapunov import CHAOTIC, FIXED_POINT, PERIODIC, TOO_SHORT, classify, rosenstein


def logistic(n: int, x0: float, r: float = 4.0, burn: int = 100) -> list[float]:
    x, out = x0, []
    for i in range(n + burn):
        x = r * x * (1 - x)
        if i >= burn:
            out.append(x)
    return out


@pytest.mark.parametrize("x0", [0.1234, 0.3, 0.77])
def test_logistic_map_r4_has_exponent_ln2(x0: float) -> None:
    # Rosenstein on 1,000 points measured 0.688-0.696 for several seeds; 0.05 (7 %) leaves room for
    # the finite-sample bias of the nearest-neighbour fit while still excluding 0 and ln 3.
    lam = rosenstein(logistic(1000, x0))
    assert abs(lam - math.log(2)) < 0.05
    assert classify(logistic(1000, x0)).kind == CHAOTIC


def test_constant_series_is_fixed_point() -> None:
    st = classify([0.42] * 30)
    assert st.kind == FIXED_POINT and st.exponent == 0.0


def test_converging_series_is_fixed_point() -> None:
    assert classify(list(0.5 ** np.arange(30))).kind == FIXED_POINT


def test_period_two_alternation() -> None:
    st = classify([0.0, 1.0] * 20)
    assert st.kind == PERIODIC and st.period == 2


def test_sine_has_exponent_near_zero() -> None:
    t = np.arange(500)
    x = np.sin(2 * np.pi * t / 17.3)  # not an integer period: no exact repeat to find
    lam = rosenstein(x)
    assert abs(lam) < 0.1
    assert classify(x).kind == PERIODIC


def test_stable_logistic_regimes_are_periodic() -> None:
    assert classify(logistic(500, 0.2, r=3.2)).period == 2
    assert classify(logistic(500, 0.2, r=3.5)).period == 4


def test_too_short() -> None:
    assert classify([0.1, 0.5, 0.2]).kind == TOO_SHORT
