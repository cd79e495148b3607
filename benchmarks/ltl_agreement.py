"""Monitor against reference on larger random formulas than the unit tests use (8 atoms, traces up to 30 steps).

    python benchmarks/ltl_agreement.py [--n 2000] [--depth 5] [--seed 5]

Prints JSON: pairs checked, pairs the reference tableau could handle, disagreements on
(satisfied, violation_step), mean and worst monitor time per pair (ms), and how many formulas
exceeded the monitor's liveness budget (inexact violation step allowed; ``satisfied`` still exact).
"""

from __future__ import annotations

import argparse
import json
import random
import time

from aimds.respond.policy import ltl, reference
from aimds.respond.policy.progression import check_trace, compile_formula

UNARY = (ltl.not_, ltl.next_, ltl.weak_next, ltl.eventually, ltl.always)
BINARY = (ltl.and_, ltl.or_, ltl.implies, ltl.iff, ltl.until, ltl.release)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--depth", type=int, default=5)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    atoms = [ltl.atom(f"p{i}") for i in range(8)]

    def gen(d: int) -> ltl.Formula:
        if d == 0 or rng.random() < 0.2:
            return rng.choice(atoms)
        if rng.random() < 0.4:
            return rng.choice(UNARY)(gen(d - 1))
        return rng.choice(BINARY)(gen(d - 1), gen(d - 1))

    total = worst = 0.0
    compared = disagree = inexact = 0
    for _ in range(args.n):
        f = gen(args.depth)
        trace = [frozenset(a.name for a in atoms if rng.random() < 0.3) for _ in range(rng.randint(0, 30))]
        t0 = time.perf_counter()
        got = check_trace(f, trace)
        dt = time.perf_counter() - t0
        total, worst = total + dt, max(worst, dt)
        exact = compile_formula(f).exact
        inexact += not exact
        try:
            want = reference.check_trace(f, trace)
        except ValueError:  # too large for the tableau oracle
            continue
        compared += 1
        if got != want and not (exact is False and got[0] == want[0]):
            disagree += 1
    print(json.dumps({"pairs": args.n, "compared": compared, "disagreements": disagree, "inexact_formulas": inexact,
                      "mean_ms": round(total / args.n * 1000, 2), "worst_ms": round(worst * 1000, 1)}))


if __name__ == "__main__":
    main()
