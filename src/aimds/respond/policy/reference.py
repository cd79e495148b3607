"""Reference semantics of LTLf, written straight from the definitions: the oracle the monitor is tested against.

A trace is a sequence of steps ``π[0] … π[n-1]``; each step is the set of atoms true at it.
``satisfies(π, i, φ)`` is defined for ``0 <= i <= n`` (``i = n`` is the empty suffix)::

    π,i ⊨ p        iff  i < n and p ∈ π[i]
    π,i ⊨ X φ      iff  i+1 < n and π,i+1 ⊨ φ          (strong next: false at the last step)
    π,i ⊨ WX φ     iff  i+1 >= n or π,i+1 ⊨ φ          (weak next: true at the last step)
    π,i ⊨ φ U ψ    iff  ∃ j, i <= j < n: π,j ⊨ ψ and ∀ k, i <= k < j: π,k ⊨ φ
    π,i ⊨ φ R ψ    iff  ∀ j, i <= j < n: π,j ⊨ ψ or ∃ k, i <= k < j: π,k ⊨ φ
    F φ = true U φ,   G φ = false R φ,   booleans as usual

A trace satisfies φ iff ``π,0 ⊨ φ``. On the empty trace (n = 0) this gives: atoms, X, U and F are
false; WX, R and G are true (vacuous quantifiers).

**Violation step.** A prefix ``π[0..k]`` is *bad* when no trace that starts with it (itself
included) satisfies φ. For a trace that does not satisfy φ, ``violation_step`` is the smallest
``k`` whose prefix is bad — the first step after which the trace can no longer satisfy φ. A trace
whose prefixes are all still good is violated only by ending (an unfulfilled ``F``, a pending
``X``); its violation step is the last index, ``n - 1``. The empty trace, when it does not
satisfy φ, reports ``0``. Satisfied traces report ``None``.

Whether a prefix is bad is decided with a tableau (independent of the progression monitor): every
``X``/``WX`` sub-formula, and every ``U F`` (strong) / ``R G`` (weak) sub-formula through its
expansion law, becomes a boolean "obligation for the next step"; an assignment of those booleans
at each step must agree with what holds at the next step, and at the last step strong obligations
are false and weak ones true. On finite traces the expansion laws have exactly one solution, so a
prefix is good iff some assignment reached by it can still reach the final assignment. Sets of
assignments are bit masks. This is exponential in the number of temporal sub-formulas: an
oracle for small formulas (:data:`MAX_TABLEAU` bits), not a production monitor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from itertools import combinations

from aimds.respond.policy.ltl import Formula, parse, subformulas

Trace = Sequence[Set[str]]
MAX_TABLEAU = 20


def satisfies(trace: Trace, i: int, formula: Formula) -> bool:
    """Whether ``π,i ⊨ formula`` (0 <= i <= len(trace)), by the definitions in the module docstring."""
    n = len(trace)
    if not 0 <= i <= n:
        raise ValueError(f"position {i} outside 0..{n}")
    memo: dict[tuple[int, Formula], bool] = {}

    def sat(j: int, f: Formula) -> bool:
        key = (j, f)
        hit = memo.get(key)
        if hit is None:
            hit = memo[key] = _sat(j, f)
        return hit

    def _sat(j: int, f: Formula) -> bool:
        op, args = f.op, f.args
        if op == "atom":
            return j < n and f.name in trace[j]
        if op == "true":
            return True
        if op == "false":
            return False
        if op == "not":
            return not sat(j, args[0])
        if op == "and":
            return all(sat(j, a) for a in args)
        if op == "or":
            return any(sat(j, a) for a in args)
        if op == "implies":
            return not sat(j, args[0]) or sat(j, args[1])
        if op == "iff":
            return sat(j, args[0]) == sat(j, args[1])
        if op == "X":
            return j + 1 < n and sat(j + 1, args[0])
        if op == "WX":
            return j + 1 >= n or sat(j + 1, args[0])
        if op == "F":
            return any(sat(k, args[0]) for k in range(j, n))
        if op == "G":
            return all(sat(k, args[0]) for k in range(j, n))
        if op == "U":
            for k in range(j, n):
                if sat(k, args[1]):
                    return True
                if not sat(k, args[0]):
                    return False
            return False
        if op == "R":
            for k in range(j, n):
                if not sat(k, args[1]):
                    return False
                if sat(k, args[0]):
                    return True
            return True
        raise ValueError(f"unknown operator {op!r}")

    return sat(i, formula)


def holds(trace: Trace, formula: Formula | str) -> bool:
    """Whether the whole trace satisfies the formula."""
    f = parse(formula) if isinstance(formula, str) else formula
    return satisfies(trace, 0, f)


class Tableau:
    """The obligation tableau of one formula (see the module docstring); decides bad prefixes."""

    def __init__(self, formula: Formula) -> None:
        self.formula = formula
        self.elements = [f for f in subformulas(formula) if f.op in ("X", "WX", "U", "R", "F", "G")]
        self.atoms = sorted(formula.atoms)
        m = len(self.elements)
        if m + len(self.atoms) > MAX_TABLEAU:
            raise ValueError(f"formula too large for the reference tableau ({m} temporal sub-formulas)")
        self.index = {f: j for j, f in enumerate(self.elements)}
        self.size = 1 << m
        self.full = (1 << self.size) - 1
        self.element_masks = [sum(1 << a for a in range(self.size) if a >> j & 1) for j in range(m)]
        self.final = sum(1 << j for j, f in enumerate(self.elements) if f.op in ("WX", "R", "G"))
        self._vectors: dict[frozenset[str], list[int]] = {}
        self._live: set[int] | None = None

    def value(self, f: Formula, letter: Set[str]) -> int:
        """Bit mask of the assignments under which ``f`` holds at a step whose atoms are ``letter``."""
        op, args = f.op, f.args
        if op == "atom":
            return self.full if f.name in letter else 0
        if op == "true":
            return self.full
        if op == "false":
            return 0
        if op == "not":
            return self.full ^ self.value(args[0], letter)
        if op == "and":
            out = self.full
            for a in args:
                out &= self.value(a, letter)
            return out
        if op == "or":
            out = 0
            for a in args:
                out |= self.value(a, letter)
            return out
        if op == "implies":
            return (self.full ^ self.value(args[0], letter)) | self.value(args[1], letter)
        if op == "iff":
            return self.full ^ (self.value(args[0], letter) ^ self.value(args[1], letter))
        mine = self.element_masks[self.index[f]]
        if op in ("X", "WX"):
            return mine
        if op == "U":
            return self.value(args[1], letter) | (self.value(args[0], letter) & mine)
        if op == "R":
            return self.value(args[1], letter) & (self.value(args[0], letter) | mine)
        if op == "F":
            return self.value(args[0], letter) | mine
        if op == "G":
            return self.value(args[0], letter) & mine
        raise ValueError(f"unknown operator {op!r}")

    def vectors(self, letter: Set[str]) -> list[int]:
        """For each assignment ``a'`` at a step with atoms ``letter``: the assignment the step before must have."""
        key = frozenset(letter) & frozenset(self.atoms)
        vec = self._vectors.get(key)
        if vec is None:
            bodies = [self.value(f.args[0] if f.op in ("X", "WX") else f, key) for f in self.elements]
            vec = [sum(1 << j for j, b in enumerate(bodies) if b >> a & 1) for a in range(self.size)]
            self._vectors[key] = vec
        return vec

    def live(self) -> set[int]:
        """Assignments from which the final assignment can be reached (by zero or more further steps)."""
        if self._live is None:
            letters = [frozenset(c) for r in range(len(self.atoms) + 1) for c in combinations(self.atoms, r)]
            live = {self.final}
            frontier = [self.final]
            while frontier:
                a2 = frontier.pop()
                for letter in letters:
                    a1 = self.vectors(letter)[a2]
                    if a1 not in live:
                        live.add(a1)
                        frontier.append(a1)
            self._live = live
        return self._live

    def reachable(self, trace: Trace) -> Iterable[set[int]]:
        """The assignments consistent with each prefix of the trace, step by step."""
        if not trace:
            return
        mask = self.value(self.formula, trace[0])
        current = {a for a in range(self.size) if mask >> a & 1}
        yield current
        for letter in trace[1:]:
            vec = self.vectors(letter)
            current = {a for a in range(self.size) if vec[a] in current}
            yield current

    def accepts(self, trace: Trace) -> bool:
        """Whether the trace satisfies the formula (must agree with :func:`satisfies`)."""
        if not trace:
            return satisfies(trace, 0, self.formula)
        *_, last = self.reachable(trace)
        return self.final in last

    def first_bad_prefix(self, trace: Trace) -> int | None:
        """The smallest ``k`` such that ``trace[:k+1]`` is a bad prefix, or ``None``."""
        live = self.live()
        for k, current in enumerate(self.reachable(trace)):
            if not current & live:
                return k
        return None


def violation_step(trace: Trace, formula: Formula | str) -> int | None:
    """The violation step as defined in the module docstring (``None`` when the trace satisfies)."""
    f = parse(formula) if isinstance(formula, str) else formula
    if satisfies(trace, 0, f):
        return None
    if not trace:
        return 0
    bad = Tableau(f).first_bad_prefix(trace)
    return len(trace) - 1 if bad is None else bad


def check_trace(formula: Formula | str, trace: Trace) -> tuple[bool, int | None]:
    """``(satisfied, violation_step)`` by the reference semantics (same contract as the monitor's)."""
    f = parse(formula) if isinstance(formula, str) else formula
    step = violation_step(trace, f)
    return step is None, step
