"""Incremental LTLf monitoring by formula progression.

The monitor keeps one *obligation*: a positive boolean formula, in disjunctive normal form, over
sub-formulas of the policy (in negation normal form), that the rest of the trace must satisfy.
Each state is a set of clauses (a clause is a set of sub-formulas that must all hold at the next
step); clauses that contain another clause are absorbed. Because every clause is a subset of the
policy's sub-formulas, a policy has finitely many states, and the monitor builds them lazily,
shared by every trace checked against the same formula.

Each state is expanded once into *terms* (its next normal form): ``(pos, neg, next, strong)`` —
the atoms that must be true and false now, the clause that must hold at the next step, and whether
a next step is required (``X``, ``U``, ``F``) or merely allowed (``WX``, ``R``, ``G``). A step then
keeps the terms whose atoms match, so stepping is a dictionary lookup once a (state, relevant
atoms) pair has been seen, and at most one pass over the terms the first time: O(|formula|) or
better per step, independent of the trace length.

Verdicts (``StepResult.status``) after step ``k``:

* ``violated`` — ``trace[:k+1]`` is a *bad prefix*: no continuation, nor stopping here, satisfies
  the policy. Decided exactly: a clause is alive iff a term that may end the trace is reachable from
  it in the (finite) graph of terms — no enumeration of atom sets needed. ``violation_step`` is the
  first such ``k`` (see :mod:`aimds.respond.policy.reference` for the definition the tests hold it to).
* ``satisfied`` — the trace satisfies the policy if it ends now (it may still be violated later
  unless ``final`` is true).
* ``pending`` — not violated, but an obligation is open (``F x``, a strong ``X``): ending now violates.

Liveness is exact unless one query has to examine more than :data:`MAX_EXPLORE` terms (large,
unnatural formulas: deep ``<->`` over temporal operators); it then assumes "still satisfiable",
so a violation may be reported later than the first bad prefix, never earlier, and
``Automaton.exact`` turns false. ``satisfied`` at the end of a trace is always exact.

At the end, :meth:`Monitor.finish` applies finite-trace semantics (``X`` false at the end, ``WX``
true, ``G`` and ``R`` true, ``F`` and ``U`` false). A trace violated only by ending reports the last
step index as its violation step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from aimds.respond.policy import ltl
from aimds.respond.policy.ltl import Formula, FormulaError, parse, to_text

MAX_TERMS: Final = 50_000
MAX_EXPLORE: Final = 20_000  # terms examined by one liveness query before it gives up (see Automaton.exact)

Status = Literal["satisfied", "pending", "violated"]
Clause = frozenset[Formula]
Term = tuple[frozenset[str], frozenset[str], Clause, bool]

_TRUE = ltl.true()
_FALSE = ltl.false()
_DEAD: Clause = frozenset({_FALSE})
_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StepResult:
    """The monitor's verdict after one step.

    ``step`` is this step's 0-based index; ``status`` one of ``satisfied``/``pending``/``violated``;
    ``final`` whether the verdict can no longer change; ``violation_step`` and ``failed`` (the
    policy's sub-formula whose obligation became false, as text) are set once violated.
    """

    step: int
    status: Status
    final: bool
    violation_step: int | None = None
    failed: str | None = None


# ------------------------------------------------------------------------------ negation normal form

def to_nnf(formula: Formula) -> tuple[Formula, dict[Formula, tuple[Formula, bool]]]:
    """The formula in negation normal form (``!`` only on atoms; no ``->``/``<->``), and for each
    NNF node the original sub-formula it came from and whether it is that sub-formula negated."""
    origin: dict[Formula, tuple[Formula, bool]] = {}
    memo: dict[tuple[Formula, bool], Formula] = {}

    def nnf(f: Formula, neg: bool) -> Formula:
        key = (f, neg)
        out = memo.get(key)
        if out is None:
            out = memo[key] = _nnf(f, neg)
            origin.setdefault(out, (f, neg))
        return out

    def _nnf(f: Formula, neg: bool) -> Formula:
        op, args = f.op, f.args
        if op == "atom":
            return ltl.not_(f) if neg else f
        if op == "true":
            return _FALSE if neg else _TRUE
        if op == "false":
            return _TRUE if neg else _FALSE
        if op == "not":
            return nnf(args[0], not neg)
        if op in ("and", "or"):
            parts = tuple(nnf(a, neg) for a in args)
            return (ltl.or_ if (op == "and") == neg else ltl.and_)(*parts)
        if op == "implies":
            a, b = args
            return ltl.and_(nnf(a, False), nnf(b, True)) if neg else ltl.or_(nnf(a, True), nnf(b, False))
        if op == "iff":
            a, b = args
            first = ltl.and_(nnf(a, False), nnf(b, neg))
            second = ltl.and_(nnf(a, True), nnf(b, not neg))
            return ltl.or_(first, second)
        if op in ("X", "WX"):
            return (ltl.weak_next if (op == "X") == neg else ltl.next_)(nnf(args[0], neg))
        if op in ("F", "G"):
            return (ltl.always if (op == "F") == neg else ltl.eventually)(nnf(args[0], neg))
        if op in ("U", "R"):
            a, b = args
            return (ltl.release if (op == "U") == neg else ltl.until)(nnf(a, neg), nnf(b, neg))
        raise FormulaError(f"unknown operator {op!r}")

    return nnf(formula, False), origin


def empty_trace_value(formula: Formula) -> bool:
    """Truth on the empty trace: atoms, ``X``, ``U``, ``F`` false; ``WX``, ``R``, ``G`` true."""
    op, args = formula.op, formula.args
    if op in ("atom", "false", "X", "U", "F"):
        return False
    if op in ("true", "WX", "R", "G"):
        return True
    if op == "not":
        return not empty_trace_value(args[0])
    if op == "and":
        return all(empty_trace_value(a) for a in args)
    if op == "or":
        return any(empty_trace_value(a) for a in args)
    if op == "implies":
        return not empty_trace_value(args[0]) or empty_trace_value(args[1])
    if op == "iff":
        return empty_trace_value(args[0]) == empty_trace_value(args[1])
    raise FormulaError(f"unknown operator {op!r}")


# ------------------------------------------------------------------------------------ term algebra

def _clause(lits: Iterable[Formula]) -> Clause:
    """A normalised clause: ``true`` dropped; a clause with ``false`` is the dead clause."""
    out = frozenset(lit for lit in lits if lit is not _TRUE)
    return _DEAD if _FALSE in out else out


def _product(left: list[Term], right: list[Term]) -> list[Term]:
    out: set[Term] = set()
    for p1, n1, x1, s1 in left:
        for p2, n2, x2, s2 in right:
            pos, neg = p1 | p2, n1 | n2
            if pos & neg:
                continue
            strong = s1 or s2
            nxt = _DEAD if (x1 is _DEAD or x2 is _DEAD) else _clause(x1 | x2)
            if strong and nxt is _DEAD:
                continue
            out.add((pos, neg, nxt, strong))
    if len(out) > MAX_TERMS:
        raise FormulaError(f"formula too complex to monitor (over {MAX_TERMS} terms per step)")
    return _prune(out)


def _prune(terms: set[Term]) -> list[Term]:
    """Drop terms that require at least as much as another term (they add nothing to the disjunction)."""
    if len(terms) < 2:
        return list(terms)
    ordered = sorted(terms, key=lambda t: (len(t[0]) + len(t[1]) + len(t[2]), t[3]))
    kept: list[Term] = []
    for t in ordered:
        p, n, x, s = t
        if not any(kp <= p and kn <= n and (kx <= x or kx == x) and (s or not ks) for kp, kn, kx, ks in kept):
            kept.append(t)
    return kept


def _absorb(clauses: Iterable[Clause]) -> frozenset[Clause]:
    """A set of clauses without the dead clause and without clauses that contain another clause."""
    uniq = sorted({c for c in clauses if c is not _DEAD and _FALSE not in c}, key=len)
    kept: list[Clause] = []
    for c in uniq:
        if not any(k <= c for k in kept):
            kept.append(c)
    return frozenset(kept)


class _State:
    __slots__ = ("atoms", "clauses", "live", "terms", "trans", "valid")

    def __init__(self, clauses: frozenset[Clause]) -> None:
        self.clauses = clauses
        self.terms: list[Term] | None = None
        self.atoms: frozenset[str] = _EMPTY
        self.trans: dict[frozenset[str], tuple[_State, bool]] = {}
        self.live: bool | None = None
        self.valid = frozenset() in clauses  # syntactically true: every continuation satisfies


class Automaton:
    """The lazily built progression automaton of one formula; share it between monitors (:func:`compile`)."""

    def __init__(self, formula: Formula) -> None:
        self.formula = formula
        self.nnf, self.origin = to_nnf(formula)
        self._expansions: dict[Formula, list[Term]] = {}
        self._clause_terms: dict[Clause, list[Term]] = {}
        self._clause_live: dict[Clause, bool] = {}
        self._states: dict[frozenset[Clause], _State] = {}
        self.exact = True  # False once a liveness query ran out of budget (violation_step may come late)
        self._explained: dict[tuple[_State, frozenset[str], bool], str] = {}
        self._top = frozenset(self.nnf.args if self.nnf.op == "and" else (self.nnf,))
        self.initial = self.state(_absorb([_clause([self.nnf])]))

    # -- expansion
    def expand(self, f: Formula) -> list[Term]:
        """The next normal form of one NNF formula as a list of terms."""
        hit = self._expansions.get(f)
        if hit is not None:
            return hit
        op, args = f.op, f.args
        here: list[Term]
        if op == "true":
            here = [(_EMPTY, _EMPTY, frozenset(), False)]
        elif op == "false":
            here = []
        elif op == "atom":
            here = [(frozenset({f.name}), _EMPTY, frozenset(), False)]
        elif op == "not":  # NNF: only over atoms
            here = [(_EMPTY, frozenset({args[0].name}), frozenset(), False)]
        elif op == "and":
            here = self.expand(args[0])
            for a in args[1:]:
                here = _product(here, self.expand(a))
        elif op == "or":
            here = _prune({t for a in args for t in self.expand(a)})
        elif op in ("X", "WX"):
            nxt = _clause([args[0]])
            here = [] if (op == "X" and nxt is _DEAD) else [(_EMPTY, _EMPTY, nxt, op == "X")]
        elif op == "U":
            here = _prune(set(self.expand(args[1])) | set(_product(self.expand(args[0]),
                                                                   [(_EMPTY, _EMPTY, frozenset({f}), True)])))
        elif op == "R":
            keep = _prune(set(self.expand(args[0])) | {(_EMPTY, _EMPTY, frozenset({f}), False)})
            here = _product(self.expand(args[1]), keep)
        elif op == "F":
            here = _prune(set(self.expand(args[0])) | {(_EMPTY, _EMPTY, frozenset({f}), True)})
        elif op == "G":
            here = _product(self.expand(args[0]), [(_EMPTY, _EMPTY, frozenset({f}), False)])
        else:
            raise FormulaError(f"operator {op!r} is not in negation normal form")
        self._expansions[f] = here
        return here

    def clause_terms(self, clause: Clause) -> list[Term]:
        """Terms of a conjunction of NNF formulas."""
        hit = self._clause_terms.get(clause)
        if hit is None:
            hit = [(_EMPTY, _EMPTY, frozenset(), False)]
            for lit in sorted(clause, key=lambda x: x.uid):
                hit = _product(hit, self.expand(lit))
                if not hit:
                    break
            self._clause_terms[clause] = hit
        return hit

    # -- liveness
    def clause_live(self, clause: Clause) -> bool:
        """Whether some non-empty continuation satisfies the clause (exact; see the module docstring)."""
        hit = self._clause_live.get(clause)
        if hit is not None:
            return hit
        # Explore the clause graph reachable from here; alive = can reach a clause with a weak term
        # (one that may end the trace). The whole explored region is memoised at once.
        if any(not t[3] for t in self.clause_terms(clause)):
            self._clause_live[clause] = True
            return True
        order: list[Clause] = [clause]
        seen: set[Clause] = {clause}
        succ: dict[Clause, set[Clause]] = {}
        live: set[Clause] = set()
        budget = MAX_EXPLORE
        i = 0
        while i < len(order):
            c = order[i]
            i += 1
            known = self._clause_live.get(c)
            if known is not None:
                succ[c] = set()
                if known:
                    live.add(c)
                continue
            terms = self.clause_terms(c)
            budget -= len(terms) + 1
            if budget < 0:  # too big to decide: assume satisfiable (a violation may be seen late, never early)
                self.exact = False
                self._clause_live[clause] = True
                return True
            if any(not t[3] for t in terms):
                live.add(c)
                succ[c] = set()
                continue
            nxt = {t[2] for t in terms if t[2] is not _DEAD}
            succ[c] = nxt
            for n in nxt:
                if n not in seen:
                    seen.add(n)
                    order.append(n)
        preds: dict[Clause, list[Clause]] = {}
        for c, ns in succ.items():
            for n in ns:
                preds.setdefault(n, []).append(c)
        stack = list(live)
        while stack:
            n = stack.pop()
            for p in preds.get(n, ()):
                if p not in live:
                    live.add(p)
                    stack.append(p)
        for c in succ:
            self._clause_live[c] = c in live
        return clause in live

    def state(self, clauses: frozenset[Clause]) -> _State:
        """The interned state for a set of (absorbed) clauses."""
        st = self._states.get(clauses)
        if st is None:
            st = self._states.setdefault(clauses, _State(clauses))
        return st

    def state_live(self, st: _State) -> bool:
        """Whether the state can still be satisfied by some non-empty continuation."""
        if st.live is None:
            st.live = st.valid or any(self.clause_live(c) for c in st.clauses)
        return st.live

    def _terms(self, st: _State) -> list[Term]:
        if st.terms is None:
            terms: set[Term] = set()
            for c in st.clauses:
                terms.update(self.clause_terms(c))
            pruned = _prune(terms)
            st.atoms = frozenset().union(*(t[0] | t[1] for t in pruned)) if pruned else _EMPTY
            st.terms = pruned
        return st.terms

    def step(self, st: _State, atoms: Set[str]) -> tuple[_State, bool]:
        """``(next state, holds if the trace ends here)`` after a step with these atoms."""
        if st.terms is None:
            self._terms(st)
        letter = st.atoms.intersection(atoms)
        hit = st.trans.get(letter)
        if hit is None:
            nxt: set[Clause] = set()
            end = False
            for pos, neg, clause, strong in st.terms:  # type: ignore[union-attr]
                if pos <= letter and not (neg & letter):
                    if not strong:
                        end = True
                    if clause is not _DEAD:
                        nxt.add(clause)
            hit = st.trans[letter] = (self.state(_absorb(nxt)), end)
        return hit

    # -- explanations
    def _outcome(self, clause: Clause, atoms: Set[str]) -> tuple[bool, bool]:
        """``(ends satisfied, can continue)`` for one clause at a step with these atoms."""
        end, alive = False, False
        for pos, neg, nxt, strong in self.clause_terms(clause):
            if pos <= atoms and not (neg & atoms):
                end = end or not strong
                alive = alive or (nxt is not _DEAD and self.clause_live(nxt))
        return end, alive

    def _bad(self, f: Formula, atoms: Set[str]) -> bool:
        end, alive = self._outcome(frozenset({f}), atoms)
        return not end and not alive

    def _ends_false(self, f: Formula, atoms: Set[str]) -> bool:
        return not self._outcome(frozenset({f}), atoms)[0]

    def _drill(self, f: Formula, atoms: Set[str], test: Callable[[Formula, Set[str]], bool]) -> Formula:
        """The most specific failing sub-formula of ``f``: through conjunctions the policy wrote, and
        through the ``G``/``R`` of a top-level obligation (``G(a -> b)`` reports ``a -> b``)."""
        top = f is self.nnf or f in self._top
        while True:
            child: Formula | None = None
            orig, neg = self.origin.get(f, (f, False))
            if f.op == "and" and not neg and orig.op == "and":
                child = next((a for a in f.args if test(a, atoms)), None)
            elif top and f.op == "G" and test(f.args[0], atoms):
                child, top = f.args[0], False
            elif top and f.op == "R" and test(f.args[1], atoms):
                child, top = f.args[1], False
            if child is None:
                return f
            f = child

    def describe(self, f: Formula) -> str:
        """The original policy text an NNF sub-formula stands for."""
        orig, neg = self.origin.get(f, (f, False))
        text = to_text(orig)
        if not neg:
            return text
        return f"!{text}" if orig.op in ("atom", "true", "false") or orig.op in ltl.UNARY else f"!({text})"

    def explain(self, st: _State, atoms: Set[str], at_end: bool) -> str:
        """Which obligations of ``st`` failed at a step with ``atoms`` (violated now, or by ending)."""
        key = (st, self.formula.atoms.intersection(atoms), at_end)
        hit = self._explained.get(key)
        if hit is None:
            hit = self._explained[key] = self._explain(st, key[1], at_end)
        return hit

    def _explain(self, st: _State, atoms: Set[str], at_end: bool) -> str:
        test = self._ends_false if at_end else self._bad
        found: list[str] = []
        for clause in sorted(st.clauses, key=lambda c: sorted(x.uid for x in c)):
            for lit in sorted(clause, key=lambda x: x.uid):
                if test(lit, atoms):
                    text = self.describe(self._drill(lit, atoms, test))
                    if text not in found:
                        found.append(text)
        if not found:  # only the conjunction fails, no single obligation does
            for clause in st.clauses:
                found.append(" & ".join(self.describe(x) for x in sorted(clause, key=lambda x: x.uid)) or "true")
        return "; ".join(found[:4]) if found else to_text(self.formula)


@lru_cache(maxsize=512)
def _compile(formula: Formula) -> Automaton:
    return Automaton(formula)


def compile_formula(formula: Formula | str) -> Automaton:
    """The (cached) automaton for a formula; parsing errors raise :class:`FormulaError`."""
    return _compile(parse(formula) if isinstance(formula, str) else formula)


class Monitor:
    """Checks one trace against one formula, a step at a time.

    >>> m = Monitor("G(source:untrusted -> G !tool:send_email)")
    >>> m.step(frozenset({"source:untrusted"})).status
    'satisfied'
    >>> m.step(frozenset({"tool:send_email"})).failed
    'G !tool:send_email'
    """

    __slots__ = ("_atoms", "_end", "_prev", "automaton", "failed", "state", "steps", "violation_step")

    def __init__(self, formula: Formula | str | Automaton) -> None:
        self.automaton = formula if isinstance(formula, Automaton) else compile_formula(formula)
        self.reset()

    def reset(self) -> None:
        """Start a new trace."""
        self.state = self.automaton.initial
        self.steps = 0
        self.violation_step: int | None = None
        self.failed: str | None = None
        self._end: bool | None = None
        self._prev = self.state
        self._atoms: Set[str] = _EMPTY

    @property
    def formula(self) -> Formula:
        """The monitored formula."""
        return self.automaton.formula

    def advance(self, atoms: Set[str]) -> bool:
        """Consume one step; whether the trace became violated at it (the fast path of :meth:`step`)."""
        index = self.steps
        self.steps = index + 1
        if self.violation_step is not None:
            return False
        prev = self.state
        hit = prev.trans.get(prev.atoms.intersection(atoms))
        nxt, end = hit if hit is not None else self.automaton.step(prev, atoms)
        self._prev, self._atoms, self.state, self._end = prev, atoms, nxt, end
        live = nxt.live
        if live is None:
            live = self.automaton.state_live(nxt)
        if end or live:
            return False
        self.violation_step = index
        self.failed = self.automaton.explain(prev, atoms, at_end=False)
        return True

    def step(self, atoms: Set[str]) -> StepResult:
        """Consume one step (the set of atoms true at it) and return the verdict."""
        index = self.steps
        if self.violation_step is not None:
            self.steps += 1
            return StepResult(index, "violated", True, self.violation_step, self.failed)
        if self.advance(atoms):
            return StepResult(index, "violated", True, index, self.failed)
        if self._end:
            return StepResult(index, "satisfied", self.state.valid)
        return StepResult(index, "pending", False)

    def peek(self, atoms: Set[str]) -> StepResult:
        """The verdict :meth:`step` would return, without consuming the step."""
        saved = (self.state, self.steps, self.violation_step, self.failed, self._end, self._prev, self._atoms)
        try:
            return self.step(atoms)
        finally:
            (self.state, self.steps, self.violation_step, self.failed, self._end, self._prev,
             self._atoms) = saved

    def finish(self) -> bool:
        """End the trace: whether it satisfies the formula. Sets ``violation_step``/``failed`` when not."""
        if self.violation_step is not None:
            return False
        if self.steps == 0:
            ok = empty_trace_value(self.automaton.formula)
            if not ok:
                self.violation_step = 0
                self.failed = to_text(self.automaton.formula)
            return ok
        if self._end:
            return True
        self.violation_step = self.steps - 1
        self.failed = self.automaton.explain(self._prev, self._atoms, at_end=True)
        return False


def check_trace(formula: Formula | str, trace: Sequence[Set[str]]) -> tuple[bool, int | None]:
    """``(satisfied, violation_step)`` for a whole trace (violation step as in :mod:`.reference`)."""
    m = Monitor(formula)
    for atoms in trace:
        if m.step(atoms).status == "violated":
            return False, m.violation_step
    return (True, None) if m.finish() else (False, m.violation_step)
