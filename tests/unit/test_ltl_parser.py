"""LTLf parser: precedence, associativity, atoms, printing round trip, error positions and size bounds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimds.errors import ConfigError
from aimds.respond.policy import ltl
from aimds.respond.policy.ltl import FormulaError, parse, to_text

a, b, c, d = (ltl.atom(x) for x in "abcd")


@pytest.mark.parametrize(("text", "expected"), [
    ("F a U b", ltl.until(ltl.eventually(a), b)),                 # unary binds tighter than U
    ("!a & b", ltl.and_(ltl.not_(a), b)),
    ("a U b R c", ltl.until(a, ltl.release(b, c))),               # U, R right-associative
    ("a U b & c", ltl.and_(ltl.until(a, b), c)),                  # U tighter than &
    ("a & b | c & d", ltl.or_(ltl.and_(a, b), ltl.and_(c, d))),   # & tighter than |
    ("a & b & c", ltl.and_(a, b, c)),                             # n-ary
    ("(a & b) & c", ltl.and_(ltl.and_(a, b), c)),
    ("a | b -> c", ltl.implies(ltl.or_(a, b), c)),                # | tighter than ->
    ("a -> b -> c", ltl.implies(a, ltl.implies(b, c))),           # -> right-associative
    ("a -> b <-> c", ltl.iff(ltl.implies(a, b), c)),              # <-> loosest
    ("X WX F G !a", ltl.next_(ltl.weak_next(ltl.eventually(ltl.always(ltl.not_(a)))))),
    ("G(a->b)", ltl.always(ltl.implies(a, b))),
    ("true U false", ltl.until(ltl.true(), ltl.false())),
    ("  a\n&\tb ", ltl.and_(a, b)),
])
def test_precedence(text: str, expected: ltl.Formula) -> None:
    assert parse(text) is expected


@pytest.mark.parametrize("name", ["tool:send_email", "flagged:indirect_injection", "source:untrusted",
                                  "http:post", "x.y/z-w", "a1", "3d", "Fa", "Xb", "WXc", "user-id"])
def test_atom_names(name: str) -> None:
    f = parse(name)
    assert f.op == "atom" and f.name == name


def test_atom_dash_before_arrow_and_keywords() -> None:
    assert parse("a->b") is ltl.implies(a, b)
    assert parse("a-b->c") is ltl.implies(ltl.atom("a-b"), c)
    assert parse("G!a") is ltl.always(ltl.not_(a))
    for bad in ("X", "true", "", "a b", "a->b"):
        with pytest.raises(FormulaError):
            ltl.atom(bad)


def test_interning_and_immutability() -> None:
    assert parse("G (a -> F b)") is parse("G(a->F b)")
    f = parse("a & b")
    with pytest.raises(AttributeError):
        f.op = "or"  # type: ignore[misc]
    assert f.atoms == {"a", "b"} and f.size == 3 and f.depth == 2


@pytest.mark.parametrize(("text", "position", "fragment"), [
    ("G(a -> )", 7, "unexpected ')'"),
    ("a b", 2, "unexpected 'b'"),
    ("(a & b", 6, "'(' at position 0 is not closed"),
    ("a & # b", 4, "unexpected character '#'"),
    ("a U", 3, "unexpected end"),
    ("", 0, "empty formula"),
    ("a )", 2, "unexpected ')'"),
    ("G(a => b)", 4, "unexpected character '='"),
])
def test_errors_point_at_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ConfigError)
    assert err.position == position and fragment in str(err)
    if text:
        lines = str(err).splitlines()
        assert lines[-1].index("^") - 2 == position   # caret under the offending character


def test_caret_window_on_long_formula() -> None:
    text = " & ".join(f"p{i}" for i in range(500)) + " & )"
    with pytest.raises(FormulaError) as info:
        parse(text)
    err = info.value
    assert err.position == len(text) - 1
    window, caret = str(err).splitlines()[-2:]
    assert window[caret.index("^")] == ")"


@pytest.mark.parametrize("text", [
    "(" * 100_000 + "a" + ")" * 100_000,      # over the length bound
    "(" * 5_000 + "a" + ")" * 5_000,          # over the depth bound, under the length bound
    "!" * 10_000 + "a",
    "G " * 5_000 + "a",
    " -> ".join(["a"] * 2_000),               # right-associative chain
    " U ".join(["a"] * 2_000),
])
def test_deep_or_long_input_is_a_clear_error(text: str) -> None:
    with pytest.raises(FormulaError) as info:
        parse(text)
    assert "deeper than" in str(info.value) or "over the limit" in str(info.value)


def test_long_flat_conjunction_is_fine() -> None:
    f = parse(" & ".join(f"p{i}" for i in range(2_000)))
    assert f.op == "and" and len(f.args) == 2_000 and f.depth == 2


def test_programmatic_depth_bound() -> None:
    f = a
    with pytest.raises(FormulaError):
        for _ in range(ltl.MAX_DEPTH + 1):
            f = ltl.next_(f)


UNARY = (ltl.not_, ltl.next_, ltl.weak_next, ltl.eventually, ltl.always)
BINARY = (ltl.and_, ltl.or_, ltl.implies, ltl.iff, ltl.until, ltl.release)
formulas = st.recursive(
    st.sampled_from([a, b, c, ltl.atom("tool:x-y"), ltl.true(), ltl.false()]),
    lambda sub: st.one_of(st.builds(lambda op, x: op(x), st.sampled_from(UNARY), sub),
                          st.builds(lambda op, x, y: op(x, y), st.sampled_from(BINARY), sub, sub),
                          st.builds(lambda xs: ltl.and_(*xs), st.lists(sub, min_size=3, max_size=4))),
    max_leaves=12,
)


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(formulas)
def test_print_parse_round_trip(f: ltl.Formula) -> None:
    assert parse(to_text(f)) is f
    assert parse(to_text(f).replace(" ", "  ")) is f


def test_pickle_round_trip() -> None:
    import pickle

    f = parse("G(a -> (b U c))")
    assert pickle.loads(pickle.dumps(f)) is f
