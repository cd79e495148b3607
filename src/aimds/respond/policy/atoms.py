"""From agent events to trace atoms: configurable mapping rules (``data/policies/agent/atoms.yaml``).

An event is a JSON object (a tool call, a tool result, a message, a confirmation…); each rule whose
``when`` conditions hold emits atoms from templates such as ``tool:{tool}``. The rule file's header
documents the condition and template language. Event values are untrusted: patterns are RE2
(linear time), values are normalised before they become atoms, and sizes are bounded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import product
from pathlib import Path
from typing import Any, Final

import re2
import yaml

from aimds.errors import ConfigError
from aimds.respond.policy.ltl import ATOM_CHARS, KEYWORDS

MAX_ATOM: Final = 64
MAX_VALUES: Final = 64          # values taken from one path (list elements)
MAX_MATCH_CHARS: Final = 65_536  # characters of a value a `matches` condition searches
_PLACEHOLDER = re2.compile(r"\{([A-Za-z0-9_.]+)\}")


def normalize_atom(value: object) -> str:
    """A value as atom text: lower-cased, other characters as ``_``, at most :data:`MAX_ATOM` characters."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    text = "".join(ch if ch in ATOM_CHARS else "_" for ch in text.strip().lower()[:MAX_ATOM])
    return text.replace("->", "-_")


def resolve(event: Any, path: str) -> list[Any]:
    """Every value at a dotted path; lists along the way fan out. Missing paths give ``[]``."""
    values = [event]
    for key in path.split("."):
        nxt: list[Any] = []
        for v in values:
            if isinstance(v, Mapping) and key in v:
                item = v[key]
                if isinstance(item, list):
                    nxt.extend(item[:MAX_VALUES])
                else:
                    nxt.append(item)
            elif isinstance(v, list):
                nxt.extend(x[key] for x in v[:MAX_VALUES] if isinstance(x, Mapping) and key in x)
        values = [v for v in nxt if v is not None][:MAX_VALUES]
        if not values:
            return []
    return values


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value[:MAX_MATCH_CHARS]
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)[:MAX_MATCH_CHARS]
    except (TypeError, ValueError):
        return str(value)[:MAX_MATCH_CHARS]


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, str) and isinstance(actual, str):
        return expected.casefold() == actual.strip().casefold()
    return bool(expected == actual)


@dataclass(frozen=True)
class Condition:
    """One ``path: test`` of a rule's ``when``."""

    path: str
    kind: str                     # "equals" | "exists" | "matches"
    values: tuple[Any, ...] = ()
    exists: bool = True
    pattern: Any = None           # compiled re2 pattern for "matches"

    def holds(self, event: Mapping[str, Any]) -> bool:
        """Whether the event passes this test."""
        found = resolve(event, self.path)
        if self.kind == "exists":
            return bool(found) == self.exists
        if self.kind == "matches":
            return any(self.pattern.search(_as_text(v)) is not None for v in found)
        return any(_same(e, v) for v in found for e in self.values)


@dataclass(frozen=True)
class AtomRule:
    """A mapping rule: when every condition holds, emit the templates."""

    id: str
    description: str
    when: tuple[Condition, ...]
    emit: tuple[str, ...]

    def atoms(self, event: Mapping[str, Any]) -> Iterator[str]:
        """The atoms this rule emits for the event (none when a condition fails)."""
        if not all(c.holds(event) for c in self.when):
            return
        for template in self.emit:
            yield from _expand(template, event)


def _expand(template: str, event: Mapping[str, Any]) -> Iterator[str]:
    paths = _PLACEHOLDER.findall(template)
    if not paths:
        yield template
        return
    choices = []
    for path in paths:
        vals = [normalize_atom(v) for v in resolve(event, path) if not isinstance(v, (Mapping, list))]
        vals = [v for v in vals if v]
        if not vals:
            return
        choices.append(vals)
    pieces = _PLACEHOLDER.split(template)  # literal, path, literal, path, …, literal
    for combo in product(*choices):
        out = pieces[0]
        for k, val in enumerate(combo):
            out += val + pieces[2 * k + 2]
        out = out[: MAX_ATOM * 2]
        if out and out not in KEYWORDS and set(out) <= ATOM_CHARS:
            yield out


def _condition(rule_id: str, path: str, spec: Any) -> Condition:
    where = f"atom rule {rule_id!r}, condition {path!r}"
    if isinstance(spec, Mapping):
        if set(spec) == {"exists"} and isinstance(spec["exists"], bool):
            return Condition(path, "exists", exists=spec["exists"])
        if set(spec) == {"matches"} and isinstance(spec["matches"], str):
            try:
                pattern = re2.compile(spec["matches"].strip())
            except re2.error as exc:
                raise ConfigError(f"{where}: pattern does not compile: {exc}") from None
            return Condition(path, "matches", pattern=pattern)
        raise ConfigError(f"{where}: a mapping must be {{exists: bool}} or {{matches: pattern}}")
    if isinstance(spec, list):
        if not spec or any(isinstance(v, (Mapping, list)) for v in spec):
            raise ConfigError(f"{where}: a list must hold one or more scalars")
        return Condition(path, "equals", values=tuple(spec))
    if spec is None:
        raise ConfigError(f"{where}: no value")
    return Condition(path, "equals", values=(spec,))


def _rule(raw: Any, index: int) -> AtomRule:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        raise ConfigError(f"atom rule #{index}: needs a string id")
    rid = raw["id"]
    unknown = set(raw) - {"id", "description", "when", "emit"}
    if unknown:
        raise ConfigError(f"atom rule {rid!r}: unknown keys {sorted(unknown)}")
    when = raw.get("when") or {}
    emit = raw.get("emit")
    if not isinstance(when, Mapping):
        raise ConfigError(f"atom rule {rid!r}: 'when' must be a mapping of path: condition")
    if not isinstance(emit, list) or not emit or not all(isinstance(t, str) and t for t in emit):
        raise ConfigError(f"atom rule {rid!r}: 'emit' must be a non-empty list of templates")
    for template in emit:
        literal = _PLACEHOLDER.sub("x", template)
        if not set(literal) <= ATOM_CHARS or literal in KEYWORDS or "{" in literal:
            raise ConfigError(f"atom rule {rid!r}: template {template!r} does not make a valid atom")
    conds = tuple(_condition(rid, str(p), s) for p, s in when.items())
    return AtomRule(rid, str(raw.get("description", "")), conds, tuple(emit))


class AtomMapper:
    """Maps an event to the set of atoms of its trace step, by a list of :class:`AtomRule`."""

    def __init__(self, rules: Sequence[AtomRule]) -> None:
        ids = [r.id for r in rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ConfigError(f"duplicate atom rule ids: {dupes}")
        self.rules = tuple(rules)

    @classmethod
    def from_dict(cls, raw: Any) -> AtomMapper:
        """Validate a parsed rule file (``{"version": 1, "rules": [...]}``)."""
        if not isinstance(raw, Mapping) or raw.get("version") != 1 or not isinstance(raw.get("rules"), list):
            raise ConfigError("atom rule file must be a mapping with version: 1 and a list of rules")
        return cls([_rule(r, i) for i, r in enumerate(raw["rules"])])

    @classmethod
    def load(cls, path: Path | str | None = None) -> AtomMapper:
        """Load a rule file; ``None`` loads the shipped ``data/policies/agent/atoms.yaml``."""
        if path is None:
            text = resources.files("aimds").joinpath("data/policies/agent/atoms.yaml").read_text("utf-8")
        else:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read atom rules {path}: {exc}") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"atom rules {path or 'atoms.yaml'}: invalid YAML: {exc}") from None
        return cls.from_dict(raw)

    def atoms(self, event: Mapping[str, Any]) -> frozenset[str]:
        """The atoms true at the trace step this event makes."""
        if not isinstance(event, Mapping):
            raise TypeError("an event must be a JSON object")
        return frozenset(a for rule in self.rules for a in rule.atoms(event))

    def explain(self, event: Mapping[str, Any]) -> dict[str, list[str]]:
        """Which rule emitted which atoms (for debugging rule files)."""
        out = {rule.id: sorted(set(rule.atoms(event))) for rule in self.rules}
        return {k: v for k, v in out.items() if v}
