"""Per-step cost of the LTLf monitors: a set of 20 policy formulas over long random traces.

    python benchmarks/ltl_bench.py [--steps 200000] [--seed 7]

A PolicySet of 20 formulas (the shipped library plus four more) is fed random steps drawn from the
atoms those formulas use (each true with probability 0.15), in traces of 1,000 steps. In the main
figure a monitor that reports a violation is restarted at once, so all 20 are live at every step
(the worst case, violation explanations included); the figure without restarts, where a violated
monitor goes quiet for the rest of its trace, is printed too. JSON output: µs per step for the
whole set (mean, p50, p99 over batches of 1,000 steps), after a warm-up that builds the states.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from aimds.respond.policy.agent import AgentPolicy, PolicySet, load_policies
from aimds.respond.policy.ltl import parse

EXTRA = [
    "G(type:tool_call -> X(type:tool_result | type:final))",
    "G(action:write -> (!action:exec U user:confirmed | G !action:exec))",
    "G(flagged:obfuscation -> F user:confirmed)",
    "(!action:outbound U user:confirmed | G !action:outbound) & G(source:untrusted -> WX G !action:privilege)",
]


def policy_set() -> PolicySet:
    """The shipped library topped up to exactly 20 policies."""
    policies = load_policies()
    for i, text in enumerate(EXTRA):
        policies.append(AgentPolicy(id=f"bench-{i}", description="bench", formula=parse(text)))
    return PolicySet(policies[:20])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    run = policy_set()
    assert len(run.policies) == 20
    atoms = sorted(set().union(*(p.formula.atoms for p in run.policies)) | {"type:message", "tool:browse"})
    rng = random.Random(args.seed)
    steps = [frozenset(a for a in atoms if rng.random() < 0.15) for _ in range(50_000)]

    monitors = run._monitors
    index = {p.id: i for i, p in enumerate(run.policies)}

    def drive(n: int, restart: bool = True) -> list[float]:
        batch_us: list[float] = []
        i = 0
        while i < n:
            t0 = time.perf_counter_ns()
            for k in range(1000):
                for v in run.step(steps[(i + k) % len(steps)]):
                    if restart:
                        monitors[index[v.policy_id]].reset()  # keep every monitor live: restart it
            run.reset()  # traces of 1,000 steps
            batch_us.append((time.perf_counter_ns() - t0) / 1000 / 1000)
            i += 1000
        return batch_us

    drive(20_000)  # warm-up: automata states and transitions get built
    per_step = sorted(drive(args.steps))
    plain = sorted(drive(args.steps, restart=False))
    print(json.dumps({
        "policies": 20,
        "atoms": len(atoms),
        "steps": args.steps,
        "us_per_step_mean": round(statistics.fmean(per_step), 2),
        "us_per_step_p50": round(per_step[len(per_step) // 2], 2),
        "us_per_step_p99": round(per_step[int(len(per_step) * 0.99)], 2),
        "us_per_step_per_policy": round(statistics.fmean(per_step) / 20, 3),
        "us_per_step_mean_without_restarts": round(statistics.fmean(plain), 2),
        "automaton_states": sum(len(m.automaton._states) for m in run._monitors),
    }))


if __name__ == "__main__":
    main()
