"""PII and secret entities: recognisers as data, one RE2 pass to find candidates, validators to keep them.

Recognisers live in ``aimds/data/pii/recognizers.yaml`` (personal data) and ``secrets.yaml``
(credentials). Each has the presidio shape: a *pattern* with a base ``score``, *context* words
that raise it to ``context_score``, and a *validator* (Luhn, mod-97, …) that drops a candidate
outright when it fails. On top of that:

- ``negative_context`` words before the value on its line (``order``, ``version`` …) lower the score by 0.4;
- ``digit_group: true`` drops a number that is only part of a longer run of digit groups;
- ``exclude_in_match`` substrings in the key part of an assignment (``password_hash``) drop it;
- example values (documented test cards, ``AKIAIOSFODNN7EXAMPLE``, ``user@example.com``,
  555-01xx numbers, RFC 5737 addresses …) are kept but marked ``example`` and capped at
  :data:`EXAMPLE_SCORE`, under the default threshold: they are not reported unless asked for.

Matching is linear: every pattern is RE2, compiled into chunked ``re2.Set`` automata (which
rules can match at all) plus one regex per rule (where), run over the UTF-8 bytes. Chunks hold 16
patterns: with all ~50 counted-repetition patterns in one automaton, random base64 makes RE2 build
DFA states for ~0.2–0.5 s per 200 kB; with 16 it stays ~10–40 ms and ordinary text costs the same. Validators
and context checks only see candidates. Overlapping candidates are resolved by score, then
length: a specific provider key beats the generic ``api_key=`` rule that covers the same value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import re2
import yaml

from aimds.detect.validators import EXAMPLE_CHECKS, VALIDATORS, compact
from aimds.errors import RuleError
from aimds.types import Category

#: Score given to recognised example/test values (below :data:`DEFAULT_MIN_SCORE`).
EXAMPLE_SCORE = 0.2
DEFAULT_MIN_SCORE = 0.5
NEGATIVE_PENALTY = 0.4
CONTEXT_BEFORE = 48
CONTEXT_AFTER = 24
#: Candidates examined per recogniser per text (bounds the work on hostile input).
MAX_PER_RULE = 10_000
REQUIRED = ("id", "entity", "title", "pattern", "score", "severity", "match", "no_match")


@dataclass(frozen=True, slots=True)
class Recognizer:
    """One candidate pattern for one entity type, with its scoring and examples."""

    id: str
    entity: str
    category: Category
    title: str
    pattern: str
    group: int
    validator: str
    score: float
    context_score: float
    context: tuple[str, ...]
    negative_context: tuple[str, ...]
    exclude_in_match: tuple[str, ...]
    example_values: frozenset[str]
    example_markers: tuple[str, ...]
    example_check: str
    not_adjacent: str
    digit_group: bool
    severity: int
    match: tuple[str, ...]
    no_match: tuple[str, ...]
    source: str


@dataclass(frozen=True, slots=True)
class Entity:
    """A piece of personal data or a secret at ``[start, end)`` of the original text."""

    type: str
    category: Category
    start: int
    end: int
    score: float
    rule: str
    example: bool = False

    @property
    def id(self) -> str:
        """``category.type``, e.g. ``pii.credit_card`` (the finding's ``rule_id``)."""
        return f"{self.category}.{self.type}"


def _strs(raw: Any, field: str, rid: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise RuleError(f"{rid}: {field} must be a list of strings")
    return tuple(raw)


def _options() -> re2.Options:
    opts = re2.Options()
    opts.max_mem = 64 << 20
    return opts


def parse_recognizer(raw: dict[str, Any], category: Category, source: str) -> Recognizer:
    """Validate one raw YAML mapping into a :class:`Recognizer`."""
    rid = str(raw.get("id", "?"))
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise RuleError(f"{source}: recognizer {rid} lacks {', '.join(missing)}")
    if not rid.startswith(f"{category}."):
        raise RuleError(f"{source}: recognizer id {rid} must start with '{category}.'")
    validator = str(raw.get("validator", "always"))
    if validator not in VALIDATORS:
        raise RuleError(f"{source}: {rid} names unknown validator {validator!r}")
    example_check = str(raw.get("example_check", ""))
    if example_check and example_check not in EXAMPLE_CHECKS:
        raise RuleError(f"{source}: {rid} names unknown example check {example_check!r}")
    score = float(raw["score"])
    context_score = float(raw.get("context_score", min(1.0, score + 0.3)))
    if not (0 <= score <= 1 and 0 <= context_score <= 1):
        raise RuleError(f"{source}: {rid} scores must be in [0, 1]")
    severity = raw["severity"]
    if not isinstance(severity, int) or not 0 <= severity <= 10:
        raise RuleError(f"{source}: {rid} severity must be an int in 0..10")
    pattern = raw["pattern"]
    try:
        compiled = re2.compile(pattern, _options())
    except re2.error as exc:
        raise RuleError(f"{source}: {rid} pattern does not compile in RE2: {exc}") from None
    group = int(raw.get("group", 0))
    if group > compiled.groups:
        raise RuleError(f"{source}: {rid} has no capture group {group}")
    return Recognizer(
        id=rid,
        entity=str(raw["entity"]),
        category=category,
        title=str(raw["title"]),
        pattern=pattern,
        group=group,
        validator=validator,
        score=score,
        context_score=context_score,
        context=tuple(w.lower() for w in _strs(raw.get("context"), "context", rid)),
        negative_context=tuple(w.lower() for w in _strs(raw.get("negative_context"), "negative_context", rid)),
        exclude_in_match=tuple(w.lower() for w in _strs(raw.get("exclude_in_match"), "exclude_in_match", rid)),
        example_values=frozenset(compact(str(v)) for v in raw.get("example_values") or ()),
        example_markers=tuple(w.lower() for w in _strs(raw.get("example_markers"), "example_markers", rid)),
        example_check=example_check,
        not_adjacent=str(raw.get("not_adjacent", "")),
        digit_group=bool(raw.get("digit_group", False)),
        severity=severity,
        match=_strs(raw["match"], "match", rid),
        no_match=_strs(raw["no_match"], "no_match", rid),
        source=source,
    )


def builtin_recognizer_files() -> list[Path]:
    """The recogniser files shipped with the package."""
    root = resources.files("aimds").joinpath("data/pii")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml"))


def load_recognizers(paths: Iterable[Path] | None = None) -> list[Recognizer]:
    """Load and validate recognisers (default: the shipped files). Ids must be unique."""
    out: list[Recognizer] = []
    seen: set[str] = set()
    for path in builtin_recognizer_files() if paths is None else paths:
        try:
            doc = yaml.safe_load(Path(path).read_text("utf-8"))
        except yaml.YAMLError as exc:
            raise RuleError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("recognizers"), list):
            raise RuleError(f"{path}: expected a mapping with a 'recognizers' list")
        try:
            category = Category(doc.get("category"))
        except ValueError:
            raise RuleError(f"{path}: category must be 'pii' or 'secret'") from None
        for raw in doc["recognizers"]:
            if not isinstance(raw, dict):
                raise RuleError(f"{path}: every recognizer must be a mapping")
            rec = parse_recognizer(raw, category, Path(path).name)
            if rec.id in seen:
                raise RuleError(f"duplicate recognizer id {rec.id}")
            seen.add(rec.id)
            out.append(rec)
    return out


def _has_word(window: str, words: Sequence[str]) -> bool:
    """Whether one of ``words`` (lower-case) starts in ``window`` at a non-alphanumeric boundary.

    Plain substring search: candidates are few and windows short, and Python's ``str.find`` is not
    a regex engine (no backtracking).
    """
    if not words:
        return False
    low = window.lower()
    for w in words:
        i = low.find(w)
        while i >= 0:
            if i == 0 or not low[i - 1].isalnum():
                return True
            i = low.find(w, i + 1)
    return False


def char_offsets(data: bytes, byte_offsets: Iterable[int]) -> dict[int, int]:
    """Map UTF-8 byte offsets (any order) to character offsets with one forward pass."""
    out: dict[int, int] = {}
    pos_b = pos_c = 0
    for b in sorted(set(byte_offsets)):
        pos_c += len(data[pos_b:b].decode("utf-8", "surrogatepass"))
        pos_b = b
        out[b] = pos_c
    return out


class EntityEngine:
    """Recognisers compiled for one linear pass; :meth:`find` returns validated, non-overlapping entities."""

    def __init__(self, recognizers: Sequence[Recognizer], chunk: int = 16) -> None:
        self.recognizers = tuple(recognizers)
        opts = _options()
        self._sets: list[tuple[int, Any]] = []
        for base in range(0, len(self.recognizers), chunk):
            rset = re2.Set.SearchSet(opts)
            for rec in self.recognizers[base : base + chunk]:
                rset.Add(rec.pattern)
            rset.Compile()
            self._sets.append((base, rset))
        self._regex = [re2.compile(r.pattern, opts) for r in self.recognizers]
        self.by_id = {r.id: r for r in self.recognizers}

    def __len__(self) -> int:
        return len(self.recognizers)

    def candidates(self, data: bytes) -> list[tuple[int, int, int]]:
        """``(recogniser index, byte start, byte end)`` of every pattern match, before validation."""
        out: list[tuple[int, int, int]] = []
        for base, rset in self._sets:
            for i in rset.Match(data) or ():
                idx = base + i
                group = self.recognizers[idx].group
                for n, m in enumerate(self._regex[idx].finditer(data)):
                    if n >= MAX_PER_RULE:
                        break
                    s, e = m.span(group)
                    if s >= 0 and e > s:
                        out.append((idx, s, e))
        return out

    def find(self, text: str, min_score: float = DEFAULT_MIN_SCORE,
             categories: Iterable[Category] | None = None) -> list[Entity]:
        """Entities in ``text`` scoring at least ``min_score``, sorted by start, never overlapping."""
        data = _utf8(text)
        cands = self.candidates(data)
        if not cands:
            return []
        if len(data) != len(text):
            to_char = char_offsets(data, [x for _, s, e in cands for x in (s, e)])
            cands = [(i, to_char[s], to_char[e]) for i, s, e in cands]
        wanted = None if categories is None else {Category(c) for c in categories}
        scored = []
        for idx, s, e in cands:
            rec = self.recognizers[idx]
            if wanted is not None and rec.category not in wanted:
                continue
            ent = self._score(idx, text, s, e)
            if ent is not None and ent.score >= min_score:
                scored.append(ent)
        return _resolve(scored)

    def _score(self, idx: int, text: str, s: int, e: int) -> Entity | None:
        rec = self.recognizers[idx]
        value = text[s:e]
        if rec.not_adjacent and not _isolated(text, s, e, rec.not_adjacent):
            return None
        if rec.digit_group and _in_digit_run(text, s, e):
            return None
        if not VALIDATORS[rec.validator](value):
            return None
        if rec.exclude_in_match:
            key = text[max(0, s - 40):s].lower()
            if any(w in key for w in rec.exclude_in_match):
                return None
        score = rec.score
        before = text[max(0, s - CONTEXT_BEFORE):s]
        if _has_word(before, rec.context) or _has_word(text[e:e + CONTEXT_AFTER], rec.context):
            score = max(score, rec.context_score)
        if _has_word(before[before.rfind("\n") + 1:], rec.negative_context):  # same line only
            score = max(0.0, score - NEGATIVE_PENALTY)
        example = _is_example(rec, value)
        if example:
            score = min(score, EXAMPLE_SCORE)
        return Entity(rec.entity, rec.category, s, e, round(score, 4), rec.id, example)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _in_digit_run(text: str, s: int, e: int) -> bool:
    """Whether ``[s, e)`` continues a run of digit groups (``1234 5678`` before or after it)."""
    before = text[max(0, s - 2):s]
    after = text[e:e + 2]
    return (len(before) == 2 and before[1] in " -./" and before[0].isdigit()) or (
        len(after) == 2 and after[0] in " -/" and after[1].isdigit())


def _isolated(text: str, s: int, e: int, chars: str) -> bool:
    """No letter/digit or ``chars`` right before; none right after (a final ``chars`` before a break is fine)."""
    if s > 0 and (text[s - 1].isalnum() or text[s - 1] in chars):
        return False
    if e < len(text):
        nxt = text[e]
        if nxt.isalnum():
            return False
        if nxt in chars and e + 1 < len(text) and text[e + 1].isalnum():
            return False
    return True


def _is_example(rec: Recognizer, value: str) -> bool:
    if rec.example_values and compact(value) in rec.example_values:
        return True
    low = value.lower()
    if any(m in low for m in rec.example_markers):
        return True
    return bool(rec.example_check) and EXAMPLE_CHECKS[rec.example_check](value)


def _resolve(entities: list[Entity]) -> list[Entity]:
    """Keep the best of overlapping entities (score, then length), sorted by start."""
    entities.sort(key=lambda x: (x.start, -x.end))
    out: list[Entity] = []
    i = 0
    while i < len(entities):
        j, end = i + 1, entities[i].end
        while j < len(entities) and entities[j].start < end:
            end = max(end, entities[j].end)
            j += 1
        out.extend(_best_of(entities[i:j]))
        i = j
    return out


def _best_of(cluster: list[Entity]) -> list[Entity]:
    if len(cluster) == 1:
        return cluster
    chosen: list[Entity] = []
    for ent in sorted(cluster, key=lambda x: (-x.score, -(x.end - x.start))):
        if all(ent.end <= c.start or ent.start >= c.end for c in chosen):
            chosen.append(ent)
    return sorted(chosen, key=lambda x: x.start)


@cache
def default_engine() -> EntityEngine:
    """The engine over the shipped recognisers (compiled on first use, then shared)."""
    return EntityEngine(load_recognizers())


def find_entities(text: str, min_score: float = DEFAULT_MIN_SCORE,
                  categories: Iterable[Category] | None = None) -> list[Entity]:
    """PII and secrets in ``text`` (spans into ``text``), sorted by start and non-overlapping."""
    return default_engine().find(text, min_score, categories)
