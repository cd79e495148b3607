"""Similarity of a model's response to its system prompt: the evidence behind ``prompt_leak_output``.

Three kinds of evidence, each robust to a different way of leaking:

- **word shingles** (3 consecutive content words): containment of the prompt's shingles in the
  response and the longest run of consecutive response shingles found in the prompt — verbatim
  and partial leaks;
- **distinctive tokens** of the prompt — numbers, URLs, e-mail addresses, identifiers
  (``lookup_account``, ``SKT-441``), codenames in capitals, CamelCase and proper names, quoted
  strings — which survive paraphrase and translation; the fraction and count found in the response;
- **structure**: list items in both, and how close their counts are — a paraphrase or translation
  that keeps the rule list.

Everything is computed on folded text (lower case), with RE2 tokenisers (linear time). The prompt's
profile is cached by its hash. Cost bound: at most :data:`MAX_WORDS` words of each response view are
read (a leak after that many words in one view is not seen by this check; the canary still is).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass
from functools import cache, lru_cache
from threading import Lock

import re2

from aimds.normalize.fold import fold
from aimds.normalize.words import common_words

SHINGLE = 3
#: Weight of a name or quoted phrase among the distinctive tokens (answers sign with the persona's name).
WEAK_WEIGHT = 0.5
#: Words of one response view read at most (about 300k characters of prose).
MAX_WORDS = 50_000
_CACHE_SIZE = 256

_QUOTED = re2.compile("[\"\u201c\u201e\u00ab]([^\"\u201c\u201d\u201e\u00ab\u00bb\n]{3,60})[\"\u201d\u00bb]")
_CAPWORD = re2.compile(r"[A-Z][\pL\pN]*")
_SENTENCE_END = frozenset(".!?:\n")

# Canary tokens in the prompt are the canary detector's business: left out of the comparison.
_CANARY = re2.compile(r"cnry-[a-z2-7]{12}-[a-z2-7]{10}")
_STOP_WORDS = (
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this "
    "that these those you your yours i me my we our us he she they them their his her not no do does did "
    "can could will would should may might must shall have has had than then there here when where which "
    "who what how all any each only also very so such into about over under after before up down out off "
    "again more most other some own same just too per via"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class PromptProfile:
    """What is compared against responses, computed once per system prompt."""

    shingles: frozenset[int]
    distinctive: frozenset[str]
    weak: frozenset[str]        # names and quoted phrases: public-facing (the persona's own name), half weight
    numbers: frozenset[str]
    list_items: int
    words: int


@dataclass(frozen=True, slots=True)
class Similarity:
    """Evidence that one response view repeats the prompt; ``run_span`` is in the view's text."""

    containment: float          # share of the prompt's content shingles present in the response
    run: int                    # longest run of consecutive response words covered by prompt shingles
    run_span: tuple[int, int]   # that run, as a range of the view's text
    distinctive: float          # weighted share of the prompt's distinctive tokens present
    distinctive_count: float    # weighted count (names and quoted phrases count half)
    strong: int                 # distinctive tokens found that are not names or quoted phrases
    structure: float            # list-item count agreement (0 when either has fewer than 3 items)
    token_span: tuple[int, int] | None   # first to last distinctive token found (view text)

    def score(self, weights: LeakWeights) -> float:
        """Leak score in [0, 1] from the evidence under ``weights``."""
        return weights.score(self)


@dataclass(frozen=True, slots=True)
class LeakWeights:
    """The decision surface (tuned on the tune half of the evaluation set; see ``data/output/leak.yaml``)."""

    run_words: int = 12               # a verbatim run this long is a leak on its own
    containment: float = 0.5          # so is this share of the prompt's shingles
    distinctive: float = 0.45         # share of distinctive tokens ...
    distinctive_min: float = 4        # ... with at least this weighted count found
    structure_bonus: float = 0.15     # lowers the distinctive share needed when the list structure matches
    strong_min: int = 3               # identifiers, URLs, numbers, codenames among them (not only names)

    def ratio(self, s: Similarity) -> float:
        """How far ``s`` is past the nearest threshold (1.0 = exactly at one)."""
        parts = [s.run / self.run_words, s.containment / self.containment]
        if s.distinctive_count >= self.distinctive_min and s.strong >= self.strong_min:
            need = self.distinctive - self.structure_bonus * s.structure
            parts.append(s.distinctive / max(need, 1e-6))
        return max(parts)

    def score(self, s: Similarity) -> float:
        """1.0 well past a threshold, 0.8 at it, proportionally less below (kept only as context)."""
        x = self.ratio(s)
        return round(min(1.0, 0.8 * x) if x < 1.0 else min(1.0, 0.8 + 0.2 * min(1.0, x - 1.0)), 4)


_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\u00a0\u00ab\u00bb\u00bf\u00a1\u2018\u2019\u201a\u201c\u201d\u201e" \
         "\u2013\u2014\u2026\u2022\u00b7\u202f\u3001\u3002"
#: Word tokeniser: every punctuation mark becomes a space (str.translate + split: linear, C speed).
_WORD_TABLE = str.maketrans({c: " " for c in _PUNCT})
#: Compound tokeniser: brackets, quotes and list punctuation split; - _ . : / @ stay inside a token.
_COMPOUND_TABLE = str.maketrans({c: " " for c in _PUNCT if c not in "-_.:/@"})
_JOINERS = "-_.:/@"


def _words(text: str, limit: int = MAX_WORDS) -> list[str]:
    return text.translate(_WORD_TABLE).split(None, limit)[:limit]


def _compounds(text: str) -> list[str]:
    """Tokens split on spaces, brackets and quotes, with trailing sentence punctuation removed."""
    return [t for t in (tok.strip(_JOINERS) for tok in text.translate(_COMPOUND_TABLE).split()) if t]


def _shingles(words: list[str]) -> list[int | None]:
    """Hash of each content shingle starting at each word (None for stop-word-only shingles)."""
    content = [w not in _STOP for w in words]
    return [hash((words[i], words[i + 1], words[i + 2])) if content[i] or content[i + 1] or content[i + 2]
            else None for i in range(len(words) - SHINGLE + 1)]


def _numeric(tok: str) -> bool:
    return bool(tok) and tok[0].isdigit() and all(c.isdigit() or c in ".,:" for c in tok)


def _number_keys(compounds: list[str]) -> set[str]:
    """Digit strings of the numbers (``2,500``, ``2.500`` and ``2 500`` all give ``2500``); two digits or more."""
    keys: set[str] = set()
    prev = ""
    for tok in compounds:
        if _numeric(tok):
            key = "".join(c for c in tok if c.isdigit())
            if prev and len(prev) <= 3 and prev.isdigit() and len(tok) == 3 and tok.isdigit():
                keys.discard(prev)
                keys.add(prev + tok)          # thousands separated by a space or a comma: one number
                prev = prev + tok
                continue
            if len(key) >= 2:
                keys.add(key)
            prev = tok
        else:
            prev = ""
    return keys


def list_items_count(text: str) -> int:
    """Lines that start like a list item (``-``, ``*``, ``•``, ``1.``, ``2)``)."""
    n = 0
    for line in text.splitlines():
        t = line.lstrip()
        if len(t) < 3:
            continue
        if t[0] in "-*\u2022" and t[1] in " \t":
            n += 1
        elif t[0].isdigit():
            i = 1 if not t[1].isdigit() else 2
            if i + 1 < len(t) and t[i] in ".)" and t[i + 1] in " \t":
                n += 1
    return n


def _distinctive(original: str, folded: str) -> tuple[set[str], set[str], set[str]]:
    """Distinctive tokens (folded), the weak ones among them (names, quoted phrases) and number keys."""
    common = common_words()
    comps = _compounds(folded)
    tokens: set[str] = set()
    weak: set[str] = set()
    for t in comps:
        if len(t) >= 4 and any(c in _JOINERS for c in t) and not _numeric(t):
            tokens.add(t)
    for t in _words(folded):
        if any(c.isdigit() for c in t) and any(c.isalpha() for c in t):
            tokens.add(t)
    for m in _QUOTED.finditer(folded):
        q = " ".join(_words(m.group(1)))
        if len(q) >= 4:
            weak.add(q)
    for m in _CAPWORD.finditer(original):
        w = m.group(0)
        low = w.lower()
        if len(w) < 3 or low in common or low in _STOP:
            continue
        before = original[max(0, m.start() - 3):m.start()].rstrip(" \t\"'(*-")
        caps = w.isupper() and len(w) >= 3
        camel = any(c.isupper() for c in w[1:])
        if caps and len(w) >= 4:
            tokens.add(low)             # a codename
        elif caps or camel or (before and before[-1] not in _SENTENCE_END and not before[-1].isdigit()):
            weak.add(low)               # a name: the assistant's, the company's, a person's
    weak -= tokens
    return tokens | weak, weak, _number_keys(comps)


_profiles: OrderedDict[str, PromptProfile] = OrderedDict()
_lock = Lock()


def profile(system_prompt: str) -> PromptProfile:
    """The (cached) profile of ``system_prompt``."""
    key = hashlib.sha256(system_prompt.encode("utf-8", "surrogatepass")).hexdigest()
    with _lock:
        hit = _profiles.get(key)
        if hit is not None:
            _profiles.move_to_end(key)
            return hit
    folded = _CANARY.sub(" ", fold(system_prompt, with_signals=False).text)
    words = _words(folded)
    shingles = frozenset(h for h in _shingles(words) if h is not None)
    tokens, weak, numbers = _distinctive(system_prompt, folded)
    prof = PromptProfile(shingles, frozenset(tokens), frozenset(weak), frozenset(numbers),
                         list_items_count(system_prompt), len(words))
    with _lock:
        _profiles[key] = prof
        while len(_profiles) > _CACHE_SIZE:
            _profiles.popitem(last=False)
    return prof


def longest_run(prof: PromptProfile, text: str) -> tuple[int, tuple[int, int]]:
    """Only the longest verbatim run (words) and its span in ``text``: the cheap per-chunk check."""
    words = _words(text)
    best, best_at, run_start, run_end = 0, (0, 0), -1, -1
    for i, h in enumerate(_shingles(words)):
        if h is not None and h in prof.shingles:
            if run_end < i:
                run_start = i
            run_end = i + SHINGLE - 1
            if run_end - run_start + 1 > best:
                best, best_at = run_end - run_start + 1, (run_start, run_end)
    if not best:
        return 0, (0, 0)
    return best, (_word_start(text, words, best_at[0]), _word_end(text, words, best_at[1]))


def compare(prof: PromptProfile, text: str, *, list_items: int | None = None) -> Similarity:
    """Evidence that ``text`` (a folded or decoded view of the response) repeats the prompt."""
    words = _words(text)
    # Shingles: containment and the longest covered run (in words).
    found: set[int] = set()
    best, best_at, run_start, run_end = 0, (0, 0), -1, -1
    for i, h in enumerate(_shingles(words)):
        if h is not None and h in prof.shingles:
            found.add(h)
            if run_end < i:                      # a new run starts here
                run_start = i
            run_end = i + SHINGLE - 1
            if run_end - run_start + 1 > best:
                best, best_at = run_end - run_start + 1, (run_start, run_end)
    containment = len(found) / len(prof.shingles) if prof.shingles else 0.0
    body = text if len(words) < MAX_WORDS else text[:_word_end(text, words, len(words) - 1)]
    # Distinctive tokens.
    comps = _compounds(body)
    present = set(words)
    present.update(comps)
    joined = " ".join(words)
    nums = _number_keys(comps)
    hits = [t for t in prof.distinctive if t in present or (" " in t and t in joined)]
    strong = sum(1 for t in hits if t not in prof.weak)
    got = strong + WEAK_WEIGHT * (len(hits) - strong)
    nhits = [n for n in prof.numbers if n in nums]
    strong += len(nhits)
    got += len(nhits)
    total = len(prof.distinctive) - (1 - WEAK_WEIGHT) * len(prof.weak) + len(prof.numbers)
    token_span = None
    positions = [p for p in (body.find(t) for t in hits if not t.isdigit()) if p >= 0]
    if positions:
        token_span = (min(positions), max(positions) + 1)
    items = list_items_count(body) if list_items is None else list_items
    structure = 0.0
    if items >= 3 and prof.list_items >= 3:
        structure = min(items, prof.list_items) / max(items, prof.list_items)
    run_span = (0, 0)
    if best:
        run_span = (_word_start(text, words, best_at[0]), _word_end(text, words, best_at[1]))
    return Similarity(round(containment, 4), best, run_span, round(got / total, 4) if total else 0.0,
                      got, strong, round(structure, 4), token_span)


def _locate(text: str, words: list[str], upto: int) -> int:
    """Start offset in ``text`` of ``words[upto]`` (sequential ``str.find``: linear)."""
    pos = 0
    low = text.translate(_WORD_TABLE)
    for w in words[:upto]:
        pos = low.find(w, pos) + len(w)
    return low.find(words[upto], pos)


def _word_start(text: str, words: list[str], i: int) -> int:
    return max(0, _locate(text, words, i))


def _word_end(text: str, words: list[str], i: int) -> int:
    return max(0, _locate(text, words, i)) + len(words[i])


# --- incremental comparison over a stream -----------------------------------------------------------

#: Characters of a word held back at most before a stream segment is cut inside it.
HOLD_CHARS = 64


@dataclass(frozen=True, slots=True)
class _Segment:
    """One committed piece of the stream, folded, with what it holds of the prompt's evidence."""

    start: int                   # stream offset of its first original character
    end: int
    folded: str
    offsets: tuple[int, ...] | None   # folded index -> offset in the segment's original text (None: identity)
    first_word: int              # stream index of its first word
    words: tuple[str, ...]
    tokens: frozenset[str]       # the prompt's distinctive tokens it holds
    numbers: frozenset[str]      # the prompt's number keys it holds
    items: int                   # list items starting in it

    def to_stream(self, i: int) -> int:
        """Stream offset of folded character ``i``."""
        if self.offsets is None:
            return self.start + min(i, self.end - self.start)
        return self.start + self.offsets[max(0, min(i, len(self.offsets) - 1))]


_NON_ASCII_WORD = re2.compile(r"\S*[^\x00-\x7f]\S*")


@cache
def _char_bits(ch: str) -> int:
    """fold's class bits of one (folded) character."""
    from aimds.normalize.fold import tables

    return int(tables().cls[ord(ch)])


_ASCII_LETTER = re2.compile(r"[A-Za-z]")


@lru_cache(maxsize=4096)
def _fold_word(word: str, ascii_letters: bool, foreign: bool) -> tuple[str, tuple[int, ...]]:
    """fold's steps on one whitespace-free word (offsets relative to it), in Python: the table, combining
    marks after an ASCII letter dropped, look-alikes folded inside mixed-script word runs (or in runs of
    look-alikes only when the text has ``foreign`` letters without a Latin twin, and only when it has
    ``ascii_letters`` at all). Cheaper than ``fold`` (numpy's fixed cost) on a few words; cached, as the
    words of a text repeat."""
    from aimds.normalize.fold import CONF, MARK, WORD, tables

    t = tables()
    chars: list[str] = []
    offs: list[int] = []
    base = ""                                     # the last character that is not a mark
    for k, ch in enumerate(word):
        for r in t.fold.get(ord(ch), ch):
            if r >= "\x80" and _char_bits(r) & MARK:
                if base and base < "\x80" and base.isalpha():
                    continue                      # a mark on an ASCII letter
            else:
                base = r
            chars.append(r)
            offs.append(k)
    if ascii_letters and any(r >= "\x80" and _char_bits(r) & CONF for r in chars):
        n = len(chars)
        i = 0
        while i < n:
            j = i
            while j < n and ((chars[j].isascii() and chars[j].isalnum()) or bool(_char_bits(chars[j]) & WORD)):
                j += 1
            if j == i:
                i += 1
                continue
            conf = [p for p in range(i, j) if _char_bits(chars[p]) & CONF]
            n_ascii = sum(1 for p in range(i, j) if chars[p].isascii() and chars[p].isalpha())
            if j - i >= 3 and conf and (n_ascii or (not foreign and len(conf) == j - i)):
                for p in conf:
                    rep = t.upper.get(word[offs[p]]) or t.cross.get(chars[p])
                    if rep:
                        chars[p] = rep
            i = j
    return "".join(chars), tuple(offs)


def fold_light(text: str, *, ascii_letters: bool | None = None) -> tuple[str, tuple[int, ...] | None]:
    """:func:`~aimds.normalize.fold.fold` of ``text`` with whitespace runs kept, and its offsets (``len + 1``
    entries; None for the identity), without fold's fixed cost (~0.1–0.5 ms even for a few words).

    ASCII stretches need only the fold table (one ``str.translate``), and so do the words whose folded
    characters fold no further: accented letters, emoji, and other scripts' words (look-alike letters
    are folded only inside words that mix them with ASCII letters, or everywhere when the text has no
    letter of another script without a Latin twin). The other words (combining marks, mixed scripts)
    go through fold's steps in Python (:func:`_fold_word`), with what decides its text-wide rules (an
    ASCII letter anywhere, a foreign letter anywhere). ``ascii_letters``: whether the text
    around ``text`` has ASCII letters (a piece of a stream: look-alike words are folded when it has);
    None decides from ``text`` alone."""
    from aimds.normalize.fold import CONF, FOREIGN, MARK, tables

    t = tables()
    if text.isascii():
        low = text.translate(t.ascii_fold)
        if len(low) == len(text):
            return low, None
    words: list[tuple[int, int, str, bool, bool, bool]] = []   # (start, end, folded, mark, look-alike, ASCII letter)
    foreign = ""                                            # a letter of another script without a Latin twin
    for m in _NON_ASCII_WORD.finditer(text):
        a, b = m.span()
        out = text[a:b].translate(t.fold)
        mark = conf = asc = False
        for ch in out:
            if ch < "\x80":
                asc = asc or ch.isalpha()
                continue
            bits = _char_bits(ch)
            mark = mark or bool(bits & MARK)
            conf = conf or bool(bits & CONF)
            if not foreign and bits & FOREIGN and not bits & CONF:
                foreign = ch
        words.append((a, b, out, mark, conf, asc))
    parts: list[str] = []
    offsets: list[int] = []
    hard: list[tuple[int, int, int]] = []        # (index in parts, start, end) of the words for _fold_word
    pos = 0
    for a, b, out, mark, conf, asc in [*words, (len(text), len(text), "", False, False, False)]:
        stretch = text[pos:a]
        low = stretch.translate(t.ascii_fold)
        parts.append(low)
        if len(low) == a - pos:
            offsets.extend(range(pos, a))
        else:                                    # ASCII control characters dropped
            offsets.extend(pos + k for k, ch in enumerate(stretch) if t.ascii_fold.get(ord(ch), ch))
        if a == len(text):
            break
        # Look-alikes are folded inside words mixing them with ASCII letters, and anywhere when the text
        # has no foreign letter without a Latin twin (fold's rules); combining marks may be dropped.
        if not mark and not (conf and (asc or not foreign)):
            parts.append(out)
            if len(out) == b - a:
                offsets.extend(range(a, b))
            else:
                for k, ch in enumerate(text[a:b]):
                    offsets.extend([a + k] * len(t.fold.get(ord(ch), ch)))
        else:
            hard.append((len(parts), a, b))
            parts.append("")
            offsets.append(-1)                    # a marker, replaced below
        pos = b
    if hard:
        if ascii_letters is None:
            ascii_letters = _ASCII_LETTER.search(text) is not None
        filled: list[int] = []
        k = 0
        for i, a, b in hard:
            parts[i], offs = _fold_word(text[a:b], ascii_letters, bool(foreign))
            marker = offsets.index(-1, k)
            filled.extend(offsets[k:marker])
            filled.extend(a + o for o in offs)
            k = marker + 1
        offsets = filled + offsets[k:]
    offsets.append(len(text))
    return "".join(parts), tuple(offsets)


class RunningSimilarity:
    """:func:`compare` of the last ``span`` characters of a stream with the prompt, kept up to date
    segment by segment: each character is folded and tokenised once, and the window's evidence is the
    union of its segments' (shingle hits, distinctive tokens, numbers, list items).

    The caller commits text with :meth:`add` (``text`` starting at stream offset ``start``); words
    cut by a segment boundary should be avoided (:meth:`cut` finds where to cut). :meth:`similarity`
    gives the evidence over the segments that end within the last ``span`` characters.
    """

    def __init__(self, prof: PromptProfile, span: int) -> None:
        self.prof = prof
        self.span = span
        self._segs: deque[_Segment] = deque()
        self._hits: deque[tuple[int, int]] = deque()     # (stream word index of a shingle, its hash)
        self._tail: tuple[str, ...] = ()                  # the last words, for shingles and phrases across segments
        self._nwords = 0
        self._end = 0
        self._line_start = True
        self._single = frozenset(t for t in prof.distinctive if " " not in t)
        self._phrases = tuple(t for t in prof.distinctive if " " in t)
        self._keep = max([SHINGLE - 1] + [len(p.split()) for p in self._phrases])

    @property
    def end(self) -> int:
        """Stream offset up to which text has been committed."""
        return self._end

    @staticmethod
    def cut(text: str, final: bool = False) -> int:
        """Where to end the next segment of uncommitted ``text``: after its last whitespace, or everything
        when ``final`` or when the word held back would be longer than :data:`HOLD_CHARS`."""
        if final:
            return len(text)
        i = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t"))
        if len(text) - (i + 1) > HOLD_CHARS:
            return len(text)
        cut = i + 1
        while cut > 0:      # numbers written with spaces ("2 500") stay in one segment
            head = text[:cut].rstrip()
            j = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
            tok = head[j + 1:].strip(_JOINERS + ",;")
            if not (tok and _numeric(tok)) or len(text) - (j + 1) > HOLD_CHARS:
                break
            cut = j + 1
        return cut

    def add(self, text: str, start: int, folded: tuple[str, tuple[int, ...] | None] | None = None) -> bool:
        """Commit ``text`` (stream offset ``start``; ``folded``: its :func:`fold_light`, when the caller has it);
        whether it added any evidence."""
        if not text:
            return False
        folded, offsets = folded if folded is not None else fold_light(text)
        words = _words(folded)
        prof = self.prof
        first = self._nwords
        ctx = self._tail + tuple(words)
        base = first - len(self._tail)
        hit = False
        for j, h in enumerate(_shingles(list(ctx))):
            if h is not None and h in prof.shingles and base + j >= first - (SHINGLE - 1):
                self._hits.append((base + j, h))
                hit = True
        comps = _compounds(folded)
        present = set(words)
        present.update(comps)
        tokens = set(self._single & present)
        if self._phrases:
            joined = " ".join(ctx)
            tokens.update(p for p in self._phrases if p in joined)
        numbers: frozenset[str] = frozenset()
        if prof.numbers and any(d in folded for d in "0123456789"):
            numbers = frozenset(_number_keys(comps) & prof.numbers)
        body = text if self._line_start else text.partition("\n")[2]
        items = list_items_count(body) if prof.list_items >= 3 else 0
        self._line_start = text.endswith("\n")
        self._segs.append(_Segment(start, start + len(text), folded, offsets, first, tuple(words),
                                   frozenset(tokens), numbers, items))
        self._nwords += len(words)
        self._tail = ctx[-self._keep:]
        self._end = start + len(text)
        self._drop()
        return hit or bool(tokens) or bool(numbers) or bool(items)

    def _drop(self) -> None:
        """Forget the segments (and shingle hits) wholly before the last ``span`` characters."""
        low = self._end - self.span
        while len(self._segs) > 1 and self._segs[0].end <= low:
            self._segs.popleft()
        first = self._segs[0].first_word if self._segs else self._nwords
        while self._hits and self._hits[0][0] < first:
            self._hits.popleft()

    @property
    def start(self) -> int:
        """Stream offset where the compared span starts."""
        return self._segs[0].start if self._segs else self._end

    def similarity(self) -> tuple[Similarity, tuple[int, int]]:
        """The evidence over the span, and where it lies (stream offsets: from the first segment holding a
        distinctive token or the longest verbatim run to the last; the whole span when there is neither)."""
        prof = self.prof
        found: set[int] = set()
        best, best_at, run_start, run_end = 0, (0, 0), -1, -1
        for i, h in self._hits:
            found.add(h)
            if run_end < i:
                run_start = i
            run_end = i + SHINGLE - 1
            if run_end - run_start + 1 > best:
                best, best_at = run_end - run_start + 1, (run_start, run_end)
        containment = len(found) / len(prof.shingles) if prof.shingles else 0.0
        hits: set[str] = set()
        nums: set[str] = set()
        items = 0
        first_tok = last_tok = None
        for seg in self._segs:
            if seg.tokens:
                hits |= seg.tokens
                first_tok = first_tok or seg
                last_tok = seg
            nums |= seg.numbers
            items += seg.items
        strong = sum(1 for t in hits if t not in prof.weak)
        got = strong + WEAK_WEIGHT * (len(hits) - strong) + len(nums)
        strong += len(nums)
        total = len(prof.distinctive) - (1 - WEAK_WEIGHT) * len(prof.weak) + len(prof.numbers)
        structure = 0.0
        if items >= 3 and prof.list_items >= 3:
            structure = min(items, prof.list_items) / max(items, prof.list_items)
        where = (self.start, self._end)
        if first_tok is not None and last_tok is not None:
            where = (first_tok.start, last_tok.end)
        if best >= SHINGLE:
            run_at = (self._word_offset(best_at[0], False), self._word_offset(best_at[1], True))
            where = run_at if first_tok is None else (min(where[0], run_at[0]), max(where[1], run_at[1]))
        sim = Similarity(round(containment, 4), best, (0, 0), round(got / total, 4) if total else 0.0,
                         got, strong, round(structure, 4), None)
        return sim, where

    def _word_offset(self, i: int, end: bool) -> int:
        """Stream offset of the start (or end) of stream word ``i``."""
        for seg in self._segs:
            k = i - seg.first_word
            if 0 <= k < len(seg.words):
                words = list(seg.words)
                pos = _word_end(seg.folded, words, k) if end else _word_start(seg.folded, words, k)
                return seg.to_stream(pos - 1) + 1 if end else seg.to_stream(pos)
        return self._end if end else self.start
