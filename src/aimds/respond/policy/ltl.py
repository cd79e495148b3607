"""Linear temporal logic over finite traces (LTLf): syntax, parser and an immutable, interned AST.

Syntax (whitespace separates tokens and is otherwise ignored)::

    atom     tool:send_email  flagged:indirect_injection  source:untrusted  http:post  a1  x.y/z-w
             letters, digits and _ : - . /  (a '-' directly followed by '>' ends the atom)
    const    true  false
    unary    !φ   X φ (strong next)   WX φ (weak next)   F φ (eventually)   G φ (always)
    binary   φ U ψ (until)   φ R ψ (release)   φ & ψ   φ | ψ   φ -> ψ   φ <-> ψ
    group    ( φ )

Precedence, tightest first (all unary operators bind tighter than every binary one)::

    1. ! X WX F G        prefix:          F a U b      =  (F a) U b;   !a & b  =  (!a) & b
    2. U R               right-assoc:     a U b R c    =  a U (b R c)
    3. &                 n-ary
    4. |                 n-ary:           a & b | c    =  (a & b) | c
    5. ->                right-assoc:     a -> b -> c  =  a -> (b -> c)
    6. <->  (loosest)    right-assoc

Keywords (``X WX F G U R true false``) are whole words: ``Fa`` is the atom ``Fa``; write ``F a`` or ``F(a)``.

Nodes are hash-consed: building the same formula twice returns the same object, so identity is
equality and formulas are cheap dictionary keys (progression relies on this). Formulas are bounded
(:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` nesting levels); longer or deeper input raises
:class:`FormulaError` before any deep recursion happens.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Final

from aimds.errors import ConfigError

MAX_LENGTH: Final = 20_000
MAX_DEPTH: Final = 128

ATOM_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-./")
UNARY: Final = ("not", "X", "WX", "F", "G")
BINARY: Final = ("and", "or", "implies", "iff", "U", "R")
KEYWORDS: Final = {"X": "X", "WX": "WX", "F": "F", "G": "G", "U": "U", "R": "R", "true": "true", "false": "false"}

# Precedence (higher binds tighter) and associativity of the binary operators.
_PREC: Final = {"iff": 1, "implies": 2, "or": 3, "and": 4, "U": 5, "R": 5}
_RIGHT: Final = frozenset({"iff", "implies", "U", "R"})
_UNARY_PREC: Final = 6
_ATOM_PREC: Final = 7
_SYMBOL: Final = {"not": "!", "X": "X", "WX": "WX", "F": "F", "G": "G", "and": "&", "or": "|",
                  "implies": "->", "iff": "<->", "U": "U", "R": "R"}


class FormulaError(ConfigError):
    """A formula that does not parse, or is too long or too deep.

    ``position`` is the 0-based character offset of the problem in ``formula``; ``str(error)`` shows
    the reason, the formula (a window of it when long) and a caret under the position.
    """

    def __init__(self, reason: str, formula: str = "", position: int = 0, source: str = "") -> None:
        self.reason = reason
        self.formula = formula
        self.position = position
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.source}: " if self.source else ""
        if not self.formula:
            return f"{head}{self.reason}"
        start = max(0, self.position - 40)
        window = self.formula[start:self.position + 40].replace("\n", " ").replace("\t", " ")
        prefix = "…" if start else ""
        caret = " " * (len(prefix) + self.position - start) + "^"
        return f"{head}{self.reason} at position {self.position}\n  {prefix}{window}\n  {caret}"

    def located(self, source: str) -> FormulaError:
        """The same error, prefixed with where the formula came from (file, policy id)."""
        return FormulaError(self.reason, self.formula, self.position, source)


class Formula:
    """An immutable, interned LTLf formula node.

    ``op`` is one of ``atom true false not and or implies iff X WX F G U R``; ``args`` the operands
    (``and``/``or`` are n-ary, at least two operands); ``name`` the atom name. Build nodes with the
    constructor functions of this module (:func:`atom`, :func:`and_`, :func:`until`, …) or
    :func:`parse`; never call the class directly.
    """

    __slots__ = ("__weakref__", "args", "atoms", "depth", "name", "op", "size", "uid")

    op: str
    args: tuple[Formula, ...]
    name: str
    uid: int
    depth: int
    size: int
    atoms: frozenset[str]

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Formula is immutable")

    def __repr__(self) -> str:
        return f"Formula({self!s})"

    def __str__(self) -> str:
        return to_text(self)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return parse, (to_text(self),)


_TABLE: weakref.WeakValueDictionary[tuple[object, ...], Formula] = weakref.WeakValueDictionary()
_UIDS = itertools.count()


def _make(op: str, args: tuple[Formula, ...] = (), name: str = "") -> Formula:
    key = (op, name, *args)
    node = _TABLE.get(key)
    if node is not None:
        return node
    depth = 1 + max((a.depth for a in args), default=0)
    if depth > MAX_DEPTH:
        raise FormulaError(f"formula nested deeper than {MAX_DEPTH} levels")
    node = object.__new__(Formula)
    setter = object.__setattr__
    setter(node, "op", op)
    setter(node, "args", args)
    setter(node, "name", name)
    setter(node, "uid", next(_UIDS))
    setter(node, "depth", depth)
    setter(node, "size", 1 + sum(a.size for a in args))
    setter(node, "atoms", frozenset({name}) if op == "atom" else frozenset().union(*(a.atoms for a in args)))
    return _TABLE.setdefault(key, node)


def atom(name: str) -> Formula:
    """The atomic proposition ``name`` (must be a valid atom name, not a keyword)."""
    if not name or name in KEYWORDS or not set(name) <= ATOM_CHARS or "->" in name:
        raise FormulaError(f"invalid atom name {name!r}")
    return _make("atom", name=name)


def true() -> Formula:
    """The constant ``true``."""
    return _make("true")


def false() -> Formula:
    """The constant ``false``."""
    return _make("false")


def not_(a: Formula) -> Formula:
    """``!a``."""
    return _make("not", (a,))


def _nary(op: str, args: tuple[Formula, ...]) -> Formula:
    if len(args) < 2:
        raise FormulaError(f"'{_SYMBOL[op]}' needs at least two operands")
    return _make(op, args)


def and_(*args: Formula) -> Formula:
    """``a & b & …`` (two or more operands)."""
    return _nary("and", args)


def or_(*args: Formula) -> Formula:
    """``a | b | …`` (two or more operands)."""
    return _nary("or", args)


def implies(a: Formula, b: Formula) -> Formula:
    """``a -> b``."""
    return _make("implies", (a, b))


def iff(a: Formula, b: Formula) -> Formula:
    """``a <-> b``."""
    return _make("iff", (a, b))


def next_(a: Formula) -> Formula:
    """``X a``: there is a next step and ``a`` holds there."""
    return _make("X", (a,))


def weak_next(a: Formula) -> Formula:
    """``WX a``: this is the last step, or ``a`` holds at the next one."""
    return _make("WX", (a,))


def eventually(a: Formula) -> Formula:
    """``F a``: ``a`` holds now or at some later step of the trace."""
    return _make("F", (a,))


def always(a: Formula) -> Formula:
    """``G a``: ``a`` holds now and at every later step of the trace."""
    return _make("G", (a,))


def until(a: Formula, b: Formula) -> Formula:
    """``a U b``: ``b`` holds at some step from now on, and ``a`` at every step before it."""
    return _make("U", (a, b))


def release(a: Formula, b: Formula) -> Formula:
    """``a R b``: ``b`` holds up to and including the first step where ``a`` holds (or to the end)."""
    return _make("R", (a, b))


_BUILD_UNARY: Final = {"not": not_, "X": next_, "WX": weak_next, "F": eventually, "G": always}
_BUILD_BINARY: Final = {"implies": implies, "iff": iff, "U": until, "R": release}


# ---------------------------------------------------------------------------------------------- lexer

class Token:
    """One lexical token: ``kind`` is an operator symbol, ``(``, ``)``, ``atom``, a keyword or ``end``."""

    __slots__ = ("kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind = kind
        self.text = text
        self.pos = pos

    def __repr__(self) -> str:
        return f"Token({self.kind!r}, {self.text!r}, {self.pos})"


_OPERATORS: Final = (("<->", "iff"), ("->", "implies"), ("!", "not"), ("&", "and"), ("|", "or"),
                     ("(", "("), (")", ")"))


def tokenize(text: str) -> list[Token]:
    """Split a formula into tokens; raises :class:`FormulaError` at the first unexpected character."""
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula is {len(text)} characters, over the limit of {MAX_LENGTH}", text, MAX_LENGTH)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        for sym, kind in _OPERATORS:
            if text.startswith(sym, i):
                tokens.append(Token(kind, sym, i))
                i += len(sym)
                break
        else:
            if ch not in ATOM_CHARS:
                raise FormulaError(f"unexpected character {ch!r}", text, i)
            j = i
            while j < n and text[j] in ATOM_CHARS and not text.startswith("->", j):
                j += 1
            if j == i:  # a lone '-' that starts '->' is handled above; this is e.g. '-' before '>'
                raise FormulaError(f"unexpected character {ch!r}", text, i)
            word = text[i:j]
            tokens.append(Token(KEYWORDS.get(word, "atom"), word, i))
            i = j
    tokens.append(Token("end", "", n))
    return tokens


# --------------------------------------------------------------------------------------------- parser

class _Parser:
    """Pratt parser over the token list; recursion depth is counted and bounded."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.level = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, reason: str, tok: Token | None = None) -> FormulaError:
        return FormulaError(reason, self.text, (tok or self.tok).pos)

    def parse(self) -> Formula:
        if self.tok.kind == "end":
            raise self.error("empty formula")
        node = self.expr(0)
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r} (expected an operator or the end)")
        return node

    def expr(self, min_prec: int) -> Formula:
        self.level += 1
        if self.level > MAX_DEPTH:
            raise self.error(f"formula nested deeper than {MAX_DEPTH} levels")
        lhs = self.prefix()
        while True:
            op = self.tok.kind
            prec = _PREC.get(op)
            if prec is None or prec < min_prec:
                break
            if op in ("and", "or"):
                operands = [lhs]
                while self.tok.kind == op:
                    self.i += 1
                    operands.append(self.expr(prec + 1))
                lhs = _make(op, tuple(operands))
            else:
                self.i += 1
                rhs = self.expr(prec if op in _RIGHT else prec + 1)
                lhs = _BUILD_BINARY[op](lhs, rhs)
        self.level -= 1
        return lhs

    def prefix(self) -> Formula:
        tok = self.tok
        kind = tok.kind
        if kind in _BUILD_UNARY:
            self.i += 1
            return _BUILD_UNARY[kind](self.expr(_UNARY_PREC))
        if kind == "(":
            self.i += 1
            inner = self.expr(0)
            if self.tok.kind != ")":
                raise self.error(f"expected ')' (the '(' at position {tok.pos} is not closed)")
            self.i += 1
            return inner
        if kind == "atom":
            self.i += 1
            return _make("atom", name=tok.text)
        if kind == "true":
            self.i += 1
            return true()
        if kind == "false":
            self.i += 1
            return false()
        if kind == "end":
            raise self.error("unexpected end of formula (expected an atom, a unary operator or '(')")
        raise self.error(f"unexpected {tok.text!r} (expected an atom, a unary operator or '(')")


def parse(text: str) -> Formula:
    """Parse an LTLf formula; raises :class:`FormulaError` with the position of the first problem."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, not {type(text).__name__}")
    try:
        return _Parser(text).parse()
    except FormulaError as exc:
        if exc.formula:
            raise
        raise FormulaError(exc.reason, text, exc.position) from None


# ------------------------------------------------------------------------------------------- printing

def _prec(f: Formula) -> int:
    if f.op in _PREC:
        return _PREC[f.op]
    return _UNARY_PREC if f.op in _BUILD_UNARY else _ATOM_PREC


def to_text(f: Formula) -> str:
    """The formula in the concrete syntax, with the fewest parentheses that parse back to ``f``."""
    op = f.op
    if op == "atom":
        return f.name
    if op in ("true", "false"):
        return op
    if op in _BUILD_UNARY:
        (a,) = f.args
        inner = to_text(a)
        if _prec(a) < _UNARY_PREC:
            inner = f"({inner})"
        return f"!{inner}" if op == "not" else f"{op} {inner}"
    prec = _PREC[op]
    sym = _SYMBOL[op]
    if op in ("and", "or"):
        parts = [to_text(a) if _prec(a) > prec else f"({to_text(a)})" for a in f.args]
        return f" {sym} ".join(parts)
    a, b = f.args
    left = to_text(a) if _prec(a) > prec else f"({to_text(a)})"
    right = to_text(b) if _prec(b) >= prec else f"({to_text(b)})"
    return f"{left} {sym} {right}"


def subformulas(f: Formula) -> list[Formula]:
    """Every distinct sub-formula of ``f``, children before parents (``f`` itself last)."""
    seen: dict[Formula, None] = {}
    stack: list[tuple[Formula, bool]] = [(f, False)]
    while stack:
        node, expanded = stack.pop()
        if node in seen:
            continue
        if expanded:
            seen[node] = None
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))
    return list(seen)
