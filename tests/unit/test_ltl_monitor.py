"""The progression monitor against the reference semantics, on random formulas and traces (hypothesis).

Deterministic (derandomised, no example database). 12,000 hypothesis pairs compare the monitor with
the reference (8,000 whole-trace results, 4,000 verdicts after every step), 1,000 check the tableau
oracle and the NNF rewrite against the recursive definition, 1,500 seeded pairs use larger formulas.
Plus hand-written cases for the end-of-trace semantics and the failure explanations.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimds.respond.policy import ltl, reference
from aimds.respond.policy.ltl import Formula, parse
from aimds.respond.policy.progression import Monitor, check_trace, compile_formula, empty_trace_value, to_nnf

ATOMS = ("a", "b", "c")
SETTINGS = {"derandomize": True, "database": None, "deadline": None,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

UNARY = (ltl.not_, ltl.next_, ltl.weak_next, ltl.eventually, ltl.always)
BINARY = (ltl.and_, ltl.or_, ltl.implies, ltl.iff, ltl.until, ltl.release)

leaves = st.sampled_from([ltl.atom(a) for a in ATOMS] + [ltl.true(), ltl.false()])
formulas = st.recursive(
    leaves,
    lambda sub: st.one_of(
        st.builds(lambda op, x: op(x), st.sampled_from(UNARY), sub),
        st.builds(lambda op, x, y: op(x, y), st.sampled_from(BINARY), sub, sub),
    ),
    max_leaves=7,
)
letters = st.frozensets(st.sampled_from(ATOMS))
traces = st.lists(letters, max_size=8)
trace_batches = st.lists(traces, min_size=4, max_size=4)  # several traces per formula: cheaper than examples


def monitor_prefix_statuses(f: Formula, trace: list[frozenset[str]]) -> list[str]:
    m = Monitor(f)
    return [m.step(s).status for s in trace]


def reference_prefix_statuses(f: Formula, trace: list[frozenset[str]]) -> list[str]:
    bad = reference.Tableau(f).first_bad_prefix(trace)
    out = []
    for k in range(len(trace)):
        if bad is not None and k >= bad:
            out.append("violated")
        else:
            out.append("satisfied" if reference.holds(trace[:k + 1], f) else "pending")
    return out


@pytest.mark.slow
@settings(max_examples=2000, **SETTINGS)
@given(formulas, trace_batches)
def test_check_trace_agrees_with_reference(f: Formula, batch: list[list[frozenset[str]]]) -> None:
    """2,000 formulas x 4 traces = 8,000 pairs."""
    for trace in batch:
        assert check_trace(f, trace) == reference.check_trace(f, trace)


@pytest.mark.slow
@settings(max_examples=1000, **SETTINGS)
@given(formulas, trace_batches)
def test_every_prefix_verdict_agrees_with_reference(f: Formula, batch: list[list[frozenset[str]]]) -> None:
    """1,000 formulas x 4 traces = 4,000 pairs, each compared after every step."""
    for trace in batch:
        assert monitor_prefix_statuses(f, trace) == reference_prefix_statuses(f, trace)


@settings(max_examples=1000, **SETTINGS)
@given(formulas, traces)
def test_tableau_and_nnf_agree_with_the_definition(f: Formula, trace: list[frozenset[str]]) -> None:
    expected = reference.holds(trace, f)
    if trace:
        assert reference.Tableau(f).accepts(trace) == expected
    assert reference.holds(trace, to_nnf(f)[0]) == expected
    assert empty_trace_value(f) == reference.holds([], f)


def test_seeded_random_larger_formulas() -> None:
    """A plain seeded generator with four atoms and longer traces, beside hypothesis's small cases."""
    rng = random.Random(20240607)
    atoms = [ltl.atom(x) for x in ("p", "q", "r", "s")]

    def gen(depth: int) -> Formula:
        if depth == 0 or rng.random() < 0.25:
            return rng.choice(atoms)
        if rng.random() < 0.4:
            return rng.choice(UNARY)(gen(depth - 1))
        return rng.choice(BINARY)(gen(depth - 1), gen(depth - 1))

    checked = 0
    while checked < 1500:
        f = gen(4)
        if len([g for g in ltl.subformulas(f) if g.op in ("X", "WX", "U", "R", "F", "G")]) > 9:
            continue
        trace = [frozenset(a.name for a in atoms if rng.random() < 0.4) for _ in range(rng.randint(1, 12))]
        assert check_trace(f, trace) == reference.check_trace(f, trace), (str(f), trace)
        checked += 1


@pytest.mark.parametrize(("formula", "trace", "expected"), [
    ("X a", [{"a"}], (False, 0)),                 # strong next is false at the last step
    ("WX a", [{"a"}], (True, None)),              # weak next is true at the last step
    ("X a", [{"b"}, {"a"}], (True, None)),
    ("F a", [{"b"}, {"b"}, {"b"}], (False, 2)),   # violated only by ending: last index
    ("G a", [{"a"}, {"b"}, {"a"}], (False, 1)),   # bad prefix at step 1
    ("a U b", [{"a"}, {"a"}], (False, 1)),
    ("a U b", [{"a"}, {"c"}], (False, 1)),
    ("a U b", [{"a"}, {"b"}], (True, None)),
    ("a R b", [{"b"}, {"b"}], (True, None)),      # release: b to the end is enough
    ("a R b", [{"b"}, {"a", "b"}, {}], (True, None)),
    ("!X true", [{"a"}], (True, None)),           # "this is the last step"
    ("!X true", [{"a"}, {"a"}, {"a"}], (False, 1)),
    ("G a & F !a", [{"a"}, {"a"}], (False, 0)),   # unsatisfiable: bad from the first step
    ("F a", [], (False, 0)),                      # empty trace: F false
    ("G a", [], (True, None)),                    # empty trace: G true
])
def test_end_of_trace_semantics(formula: str, trace: list[set[str]], expected: tuple[bool, int | None]) -> None:
    assert check_trace(formula, trace) == expected
    assert reference.check_trace(formula, trace) == expected


def test_untrusted_then_send_reports_failed_obligation() -> None:
    f = "G(source:untrusted -> (!(tool:send_email | http:post) U user:confirmed | G !(tool:send_email | http:post)))"
    m = Monitor(f)
    assert m.step({"type:message"}).status == "satisfied"
    assert m.step({"source:untrusted"}).status == "satisfied"
    assert m.peek({"tool:send_email"}).status == "violated"       # peek does not consume the step
    assert m.step({"user:confirmed"}).status == "satisfied"
    assert m.step({"tool:send_email"}).status == "satisfied"
    assert m.step({"source:untrusted"}).status == "satisfied"
    r = m.step({"http:post"})
    assert (r.status, r.step, r.violation_step) == ("violated", 5, 5)
    assert r.failed is not None and "U user:confirmed" in r.failed
    assert m.step({"x"}).violation_step == 5 and not m.finish()


def test_failed_subformula_names_the_policy_part() -> None:
    m = Monitor("G(a -> b) & G !c")
    assert m.step({"a"}).failed == "a -> b"
    m = Monitor("G(req -> F resp)")
    m.step({"req"})
    m.step({"x"})
    assert not m.finish()
    assert (m.violation_step, m.failed) == (1, "F resp")


def test_state_space_stays_small_on_long_traces() -> None:
    auto = compile_formula(parse("G(a -> F b) & G(c -> X(!d U e)) & (f R g)"))
    rng = random.Random(1)
    m = Monitor(auto)
    for _ in range(5000):
        m.step(frozenset(x for x in "abcdefg" if rng.random() < 0.3))
        if m.violation_step is not None:
            m.reset()
    assert len(auto._states) < 64


def test_monitor_reuses_compiled_automaton() -> None:
    assert compile_formula("G(a -> F b)") is compile_formula(parse("G (a -> F b)"))
