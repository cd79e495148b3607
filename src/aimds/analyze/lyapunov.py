"""Largest Lyapunov exponent of a 1-D series and a coarse stability class.

Two estimators:

* :func:`rosenstein` — Rosenstein, Collins & De Luca (1993): delay-embed the series, pair every
  point with its nearest neighbour (outside a Theiler window), follow each pair forward ``k`` steps
  and fit the slope of the mean log distance against ``k``. Needs a few hundred points to be
  trustworthy (the logistic map at r = 4 gives ln 2 ≈ 0.693 to within ~0.05 from 1,000 points).
* :func:`direct_divergence` — for short series (a session's risk trajectory has a handful to a few
  dozen turns): the mean log ratio of successive increments, ``ln |Δx[t+1] / Δx[t]|``, i.e. how fast
  consecutive differences grow. Crude, but its sign is meaningful: < 0 converging, ≈ 0 bounded
  oscillation, > 0 growing irregularity.

:func:`classify` maps a series to ``fixed_point`` / ``periodic`` / ``chaotic`` / ``too_short``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FIXED_POINT = "fixed_point"
PERIODIC = "periodic"
CHAOTIC = "chaotic"
TOO_SHORT = "too_short"

MIN_POINTS = 8          # below this no estimate is attempted
ROSENSTEIN_POINTS = 100  # from here on Rosenstein's method is used


def embed(x: np.ndarray, dim: int, lag: int) -> np.ndarray:
    """Delay embedding: rows ``(x[i], x[i+lag], …, x[i+(dim-1)lag])``."""
    m = len(x) - (dim - 1) * lag
    if m <= 0:
        raise ValueError("series too short for this embedding")
    return np.stack([x[i * lag: i * lag + m] for i in range(dim)], axis=1)


def rosenstein(series: Sequence[float], dim: int = 2, lag: int = 1, theiler: int = 1, horizon: int = 6,
               max_points: int = 1500) -> float:
    """Largest Lyapunov exponent per time step by Rosenstein's method.

    ``theiler``: neighbours closer than this in time are excluded; ``horizon``: the number of steps
    over which the mean log divergence is fitted (keep it inside the linear region, before the
    distances saturate at the attractor's size); only the first ``max_points`` points are used
    (the pairwise distance matrix is quadratic).
    """
    x = np.asarray(series, dtype=np.float64)[:max_points]
    y = embed(x, dim, lag)
    m = len(y) - horizon
    if m < 4:
        raise ValueError("series too short for Rosenstein's method")
    d = np.sqrt(((y[:m, None, :] - y[None, :m, :]) ** 2).sum(axis=2))
    idx = np.arange(m)
    d[np.abs(idx[:, None] - idx[None, :]) <= theiler] = np.inf
    d[d == 0] = np.inf  # exact repeats carry no divergence information
    nn = np.argmin(d, axis=1)
    ok = np.isfinite(d[idx, nn])
    i, j = idx[ok], nn[ok]
    if len(i) < 2:
        return 0.0  # every point repeats exactly: no divergence at all
    curve = []
    for k in range(horizon + 1):
        dist = np.sqrt(((y[i + k] - y[j + k]) ** 2).sum(axis=1))
        dist = dist[dist > 0]
        curve.append(np.mean(np.log(dist)) if len(dist) else -np.inf)
    ks = np.arange(horizon + 1)
    c = np.asarray(curve)
    good = np.isfinite(c)
    if good.sum() < 2:
        return 0.0
    return float(np.polyfit(ks[good], c[good], 1)[0])


def direct_divergence(series: Sequence[float], eps: float = 1e-9) -> float:
    """Mean ``ln |Δx[t+1] / Δx[t]|`` over consecutive non-zero increments (short-series estimate)."""
    x = np.asarray(series, dtype=np.float64)
    dx = np.abs(np.diff(x))
    pairs = [(a, b) for a, b in itertools.pairwise(dx) if a > eps and b > eps]
    if not pairs:
        return 0.0 if np.all(dx <= eps) else -1.0
    return float(np.mean([np.log(b / a) for a, b in pairs]))


def largest_lyapunov(series: Sequence[float]) -> float:
    """The exponent by the estimator that suits the series' length (see the module docstring)."""
    if len(series) < MIN_POINTS:
        raise ValueError(f"need at least {MIN_POINTS} points")
    if len(series) >= ROSENSTEIN_POINTS:
        return rosenstein(series)
    return direct_divergence(series)


def period(series: Sequence[float], tol: float = 1e-6, max_period: int | None = None) -> int:
    """Smallest ``p`` with ``|x[t+p] - x[t]| <= tol`` over the second half of the series (0 if none)."""
    x = np.asarray(series, dtype=np.float64)
    tail = x[len(x) // 2:]
    top = max_period or len(tail) // 2
    scale = max(1.0, float(np.abs(tail).max())) if len(tail) else 1.0
    for p in range(1, top + 1):
        if np.all(np.abs(tail[p:] - tail[:-p]) <= tol * scale):
            return p
    return 0


@dataclass(frozen=True)
class Stability:
    """The class of a series and the exponent it rests on (``nan`` when not estimated)."""

    kind: str
    exponent: float
    period: int = 0


def classify(series: Sequence[float], *, flat: float = 1e-6, chaotic_above: float = 0.1) -> Stability:
    """Classify a series as fixed point, periodic, chaotic or too short.

    A series whose range is within ``flat`` is a fixed point; one that repeats exactly with some
    period (in its second half) is periodic; otherwise the largest Lyapunov exponent decides:
    above ``chaotic_above`` chaotic, below ``-chaotic_above`` converging (fixed point), else
    bounded oscillation (periodic, possibly quasi-periodic).
    """
    x = np.asarray(series, dtype=np.float64)
    if len(x) < MIN_POINTS or not np.all(np.isfinite(x)):
        return Stability(TOO_SHORT, float("nan"))
    tail = x[len(x) // 2:]
    if float(tail.max() - tail.min()) <= flat:
        return Stability(FIXED_POINT, float("-inf") if float(x.max() - x.min()) > flat else 0.0)
    p = period(x)
    if p:
        return Stability(PERIODIC, 0.0, p)
    lam = largest_lyapunov(x)
    if lam > chaotic_above:
        return Stability(CHAOTIC, lam)
    if lam < -chaotic_above:
        return Stability(FIXED_POINT, lam)
    return Stability(PERIODIC, lam)
