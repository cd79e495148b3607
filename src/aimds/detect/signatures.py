"""Signature rules: versioned YAML files compiled into one linear-time RE2 multi-pattern set.

Rules live in ``aimds/data/signatures/*.yaml``. Each file holds ``rules:``, a list of mappings with
``id, title, description, category, severity, confidence, pattern, references, tags, status,
falsepositives, match, no_match`` (and optional ``todo_match``, ``lang``). Patterns are RE2
syntax (no backreferences or lookaround, so matching is linear in the text) and are matched
case-insensitively against the normalised views, never against raw input alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import re2
import yaml

from aimds import workers
from aimds.errors import RuleError
from aimds.types import Category, taxonomy

# google-re2's binding-level anchor (see ``RuleSet.span``); None if a future wrapper moves it.
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)

CONFIDENCE_SCORE = {"high": 0.92, "medium": 0.7, "low": 0.4}
STATUSES = ("experimental", "test", "stable", "deprecated")
REQUIRED = ("id", "title", "description", "category", "severity", "pattern", "tags", "status",
            "falsepositives", "match", "no_match")


@dataclass(frozen=True, slots=True)
class Rule:
    """One signature rule."""

    id: str
    title: str
    description: str
    category: Category
    severity: int
    confidence: str
    pattern: str
    references: tuple[str, ...]
    tags: tuple[str, ...]
    status: str
    falsepositives: tuple[str, ...]
    match: tuple[str, ...]
    no_match: tuple[str, ...]
    todo_match: tuple[str, ...]
    lang: str
    source: str

    @property
    def score(self) -> float:
        """Probability-like score a match of this rule contributes."""
        return CONFIDENCE_SCORE[self.confidence]


def _options() -> re2.Options:
    opts = re2.Options()
    opts.case_sensitive = False
    opts.max_mem = 64 << 20
    return opts


def _strs(raw: Any, field: str, rid: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise RuleError(f"{rid}: {field} must be a list of strings")
    return tuple(raw)


def parse_rule(raw: dict[str, Any], source: str) -> Rule:
    """Validate one raw YAML mapping into a :class:`Rule`."""
    rid = str(raw.get("id", "?"))
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise RuleError(f"{source}: rule {rid} lacks {', '.join(missing)}")
    try:
        category = Category(raw["category"])
    except ValueError:
        raise RuleError(f"{source}: rule {rid} has unknown category {raw['category']!r}") from None
    severity = raw["severity"]
    if not isinstance(severity, int) or not 0 <= severity <= 10:
        raise RuleError(f"{source}: rule {rid} severity must be an int in 0..10")
    confidence = raw.get("confidence", "medium")
    if confidence not in CONFIDENCE_SCORE:
        raise RuleError(f"{source}: rule {rid} confidence must be one of {sorted(CONFIDENCE_SCORE)}")
    if raw["status"] not in STATUSES:
        raise RuleError(f"{source}: rule {rid} status must be one of {STATUSES}")
    pattern = raw["pattern"]
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{source}: rule {rid} pattern must be a non-empty string")
    try:
        re2.compile(pattern, _options())
    except re2.error as exc:
        raise RuleError(f"{source}: rule {rid} pattern does not compile in RE2: {exc}") from None
    tags = _strs(raw["tags"], "tags", rid)
    prefixes = set(_tag_prefixes())
    bad = [t for t in tags if t.split(":", 1)[0] not in prefixes]
    if bad:
        raise RuleError(f"{source}: rule {rid} has tags outside the taxonomy: {bad}")
    return Rule(
        id=rid,
        title=str(raw["title"]),
        description=str(raw["description"]),
        category=category,
        severity=severity,
        confidence=confidence,
        pattern=pattern,
        references=_strs(raw.get("references"), "references", rid),
        tags=tags,
        status=raw["status"],
        falsepositives=_strs(raw["falsepositives"], "falsepositives", rid),
        match=_strs(raw["match"], "match", rid),
        no_match=_strs(raw["no_match"], "no_match", rid),
        todo_match=_strs(raw.get("todo_match"), "todo_match", rid),
        lang=str(raw.get("lang", "en")),
        source=source,
    )


@cache
def _tag_prefixes() -> tuple[str, ...]:
    raw = yaml.safe_load(resources.files("aimds").joinpath("data/taxonomy.yaml").read_text("utf-8"))
    taxonomy()  # validates categories too
    return tuple(raw["tag_prefixes"])


def builtin_rule_files() -> list[Path]:
    """The rule files shipped with the package."""
    root = resources.files("aimds").joinpath("data/signatures")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml"))


def load_rules(paths: Iterable[Path] | None = None, *, include_deprecated: bool = False) -> list[Rule]:
    """Load and validate rules from ``paths`` (default: the shipped files). Ids must be unique."""
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in builtin_rule_files() if paths is None else paths:
        try:
            doc = yaml.safe_load(Path(path).read_text("utf-8"))
        except yaml.YAMLError as exc:
            raise RuleError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            raise RuleError(f"{path}: expected a mapping with a 'rules' list")
        for raw in doc["rules"]:
            if not isinstance(raw, dict):
                raise RuleError(f"{path}: every rule must be a mapping")
            rule = parse_rule(raw, Path(path).name)
            if rule.id in seen:
                raise RuleError(f"duplicate rule id {rule.id} in {rule.source} and {seen[rule.id]}")
            seen[rule.id] = rule.source
            if rule.status != "deprecated" or include_deprecated:
                rules.append(rule)
    return rules


#: Scripts that route rules: a rule whose language is written in one of them (:data:`LANG_SCRIPTS`) and
#: whose every ``match`` example has a letter of it needs that script to match, so its automaton is
#: skipped on text without one — English and other Latin-script text, most traffic, never pays for them.
SCRIPTS: dict[str, str] = {
    "cyrillic": r"\p{Cyrillic}",
    "cjk": r"[\p{Han}\p{Hiragana}\p{Katakana}]",
    "hangul": r"\p{Hangul}",
    "arabic": r"\p{Arabic}",
    "devanagari": r"\p{Devanagari}",
    "bengali": r"\p{Bengali}",
    "greek": r"\p{Greek}",
    "hebrew": r"\p{Hebrew}",
    "thai": r"\p{Thai}",
}
LANG_SCRIPTS: dict[str, str] = {
    "ru": "cyrillic", "uk": "cyrillic", "bg": "cyrillic", "sr": "cyrillic", "kk": "cyrillic",
    "zh": "cjk", "ja": "cjk", "ko": "hangul", "ar": "arabic", "fa": "arabic", "ur": "arabic",
    "hi": "devanagari", "mr": "devanagari", "ne": "devanagari", "bn": "bengali", "el": "greek",
    "he": "hebrew", "th": "thai",
}


@cache
def _script_regex(script: str) -> Any:
    return re2.compile(SCRIPTS[script])


def rule_script(rule: Rule) -> str | None:
    """The script ``rule`` needs (its language's, when every ``match`` example has a letter of it), or None.

    Romanised Hindi rules (``lang: hi``, Latin examples) and rules whose examples include text without
    the script stay unrouted: they run on every text.
    """
    script = LANG_SCRIPTS.get(rule.lang)
    if script is None or not rule.match:
        return None
    regex = _script_regex(script)
    return script if all(regex.search(example) for example in rule.match) else None


#: Texts from this many UTF-8 bytes are matched against the automata by two threads (:func:`_pool`).
PARALLEL_MIN_BYTES = 64_000


def _pool() -> ThreadPoolExecutor:
    """The process's two matching threads (``aimds-re2``), created on first use."""
    return workers.pool("re2")


class RuleSet:
    """Rules compiled into RE2 ``Set`` automata (which rules match) plus per-rule regexes (where).

    One automaton for every rule outgrows RE2's DFA memory budget with hundreds of multilingual
    patterns and gets rebuilt over and over (measured ~9× slower); the rules are therefore split
    into automata of at most ``chunk`` rules, each its own linear-time ``Set`` and one more pass over
    the text. English rules, rules of other Latin-script languages and rules of each other script
    (:data:`SCRIPTS`) go to separate automata, each group split evenly (the 522 shipped rules: 3 × 70–71
    English, 5 × 35–36 other Latin-script (``other_chunk``), and one automaton each for Cyrillic, CJK,
    Arabic, Devanagari, Hangul, Greek, Bengali, Hebrew and Thai rules): rules that are never half-matched at the
    same time then do not multiply each other's DFA states, and a script's automaton runs only on text that has a
    letter of that script (:meth:`matching`). On dev rows cut to 1,000 characters, each text new to
    the automata (``benchmarks/signature_dfa.py --cold``, 2026-11-26, 287 rules) the language split
    took a mean of 1,005 µs against 1,459 µs for four automata of 72 in file order, and the same
    (~30 µs p50) on the bench corpus once warm.

    Each automaton may use ``set_mem`` bytes (128 MB) for its DFA states. On varied text (every row
    of the shared datasets, three passes: ``benchmarks/signature_dfa.py --diverse``) 64 MB was too
    little: RE2 dropped and rebuilt the states over and over, 177 ns per byte on the second pass
    (501 in file order) where 128 MB settles at 65; the states built took ~190 MB of the process.
    """

    def __init__(self, rules: Sequence[Rule], chunk: int = 72, set_mem: int = 128 << 20,
                 by_language: bool = True, by_script: bool = True, other_chunk: int = 40) -> None:
        self.rules = tuple(rules)
        opts = _options()
        opts.max_mem = set_mem
        self._sets: list[tuple[tuple[int, ...], Any]] = []
        #: Per automaton: the script its rules need (it runs only on text with a letter of it), or None.
        self._scripts: list[str | None] = []
        everything = list(range(len(self.rules)))
        groups: dict[str | None, list[int]] = {}
        if not by_language:
            groups[None] = everything
        else:
            for i in everything:
                rule = self.rules[i]
                key = "en" if rule.lang == "en" else (rule_script(rule) if by_script else None) or "other"
                groups.setdefault(key, []).append(i)
        for key, group in groups.items():
            # other Latin-script languages' rules, each with its own verb vocabulary, multiply DFA states:
            # smaller automata there (other_chunk) cost less on new text, a little more once warm
            parts = -(-len(group) // (min(chunk, other_chunk) if key == "other" else chunk))
            size, extra = divmod(len(group), parts)  # sizes differ by at most one rule
            bounds = [k * size + min(k, extra) for k in range(parts + 1)]
            for lo, hi in pairwise(bounds):
                members = tuple(group[lo:hi])
                rset = re2.Set.SearchSet(opts)
                for i in members:
                    rset.Add(self.rules[i].pattern)
                rset.Compile()
                self._sets.append((members, rset))
                self._scripts.append(key if key in SCRIPTS else None)
        self._script_set = re2.Set.SearchSet(_options())
        self._script_names = tuple(SCRIPTS)
        for pattern in SCRIPTS.values():
            self._script_set.Add(pattern)
        self._script_set.Compile()
        # Spans need only the overall match: without capture groups RE2 can use its DFA both ways.
        span_opts = _options()
        span_opts.never_capture = True
        self._regex = [re2.compile(r.pattern, span_opts) for r in self.rules]
        # The wrapper's ``search`` costs ~1.3 µs more per call than the binding it wraps (a generator
        # and a match object); spans run once per finding, so call the binding when it is there.
        self._raw = [getattr(r, "_regexp", None) if _UNANCHORED is not None else None for r in self._regex]

    def __len__(self) -> int:
        return len(self.rules)

    def scripts_in(self, data: bytes) -> frozenset[str]:
        """The routed scripts (:data:`SCRIPTS`) that have at least one letter in the UTF-8 ``data``."""
        if data.isascii():
            return frozenset()
        found = self._script_set.Match(data)
        return frozenset(self._script_names[i] for i in found) if found else frozenset()

    def automata_for(self, data: bytes) -> list[int]:
        """Indices of the automata that run on the UTF-8 ``data``: all but those of scripts it has no letter of."""
        present = self.scripts_in(data)
        return [k for k, script in enumerate(self._scripts) if script is None or script in present]

    def matching(self, text: str | bytes) -> list[int]:
        """Indices of the rules that match anywhere in ``text`` (one linear pass per automaton).

        Automata of rules written in a script other than Latin (:func:`rule_script`) run only when the
        text has a letter of that script. Pass UTF-8 ``bytes`` to skip the re-encoding of a ``str``.
        """
        data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
        sets = [self._sets[k] for k in self.automata_for(data)]
        out: list[int] = []
        if len(data) >= PARALLEL_MIN_BYTES and len(sets) > 1:
            # RE2 matches without the GIL: long texts go through the automata two at a time
            for (members, _), got in zip(sets, _pool().map(lambda s: s[1].Match(data), sets), strict=True):
                out.extend(members[i] for i in got or ())
            return sorted(out)
        for members, rset in sets:
            out.extend(members[i] for i in rset.Match(data) or ())
        return sorted(out)

    def span(self, index: int, text: str, data: bytes | None = None) -> tuple[int, int] | None:
        """Where rule ``index`` first matches in ``text`` (character offsets).

        ``data`` is ``text`` encoded as UTF-8, when the caller already has it.
        """
        if data is None:
            data = text.encode("utf-8", "surrogatepass")
        raw = self._raw[index]
        if raw is not None:
            start, end = raw.Match(_UNANCHORED, data, 0, len(data))[0]
            if start < 0:
                return None
        else:  # pragma: no cover - another google-re2 layout
            m = self._regex[index].search(data)
            if m is None:
                return None
            start, end = m.span()
        if len(data) == len(text):  # ASCII: byte offsets are character offsets
            return start, end
        s = len(data[:start].decode("utf-8", "surrogatepass"))
        return s, s + len(data[start:end].decode("utf-8", "surrogatepass"))
