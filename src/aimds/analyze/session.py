"""Tier-2 session analysis: attacks spread over the turns of a conversation.

Store-agnostic: a :class:`SessionStore` keeps each session's recent turns (normalised excerpts,
risk, features — never the full text) and the :class:`SessionAnalyzer` looks at the history plus
the current turn for

* ``session.split_payload`` — fragments defined over several turns (``a = "…"``, ``keep this: "…"``,
  ``part 2: …``) assembled, and quotations opened in one turn and closed in a later one (a payload
  told as a story), then scanned again: the whole is riskier than any of its parts. When a turn asks
  to act on what was told (``act_on_text``, ``execute``), quoted pieces of recent turns and sentences
  written across neighbouring turns are put together too; every assembled text is also judged by the
  assembled-instruction check (:mod:`aimds.analyze.assembled`). Assembled fragments count fully only
  once a turn asks to act on them (code that joins two strings does not);
* ``session.crescendo`` — a pressure trajectory that keeps rising over several turns while each turn
  on its own stays unremarkable;
* ``session.probing`` — many near-duplicate attempts with small mutations after a refusal;
* ``session.chain:<id>`` — the turns follow a known multi-step attack chain (``data/chains``);
* ``session.anomaly`` — the current turn departs sharply from the session's (or user's) baseline.
"""

from __future__ import annotations

import math
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import re2

from aimds.analyze.assembled import AssembledCheck, load_assembled
from aimds.analyze.chains import ChainLibrary, load_chains
from aimds.analyze.lyapunov import CHAOTIC, classify
from aimds.analyze.sequence import near_duplicates, normalize_turn
from aimds.detect.evidence import excerpt, redact
from aimds.types import Category, Finding, Verdict

DETECTOR = "session"
#: Stored excerpt length: enough for the cues and for re-assembling fragments, bounded for privacy.
EXCERPT_CHARS = 600
FEATURE_NAMES = ("risk", "soft", "pressure", "length", "question", "meta", "second_person", "imperative")

_META = frozenset((
    "rules", "rule", "instructions", "instruction", "guidelines", "prompt", "system", "restrictions", "filters",
    "policy", "policies", "directives", "configuration", "constraints", "guardrails",
))
_YOU = frozenset(["you", "your", "yours", "yourself", "you're", "youre", "you've"])
_IMPERATIVE = frozenset((
    "ignore", "forget", "tell", "show", "print", "reveal", "repeat", "give", "write", "list", "explain", "do",
    "run", "execute", "follow", "combine", "join", "put", "read", "send", "make", "stop", "say", "answer", "act",
    "pretend", "imagine", "drop", "disregard", "output", "translate", "decode", "encode", "describe", "now",
))


@dataclass(frozen=True)
class Turn:
    """One stored turn: a bounded normalised excerpt, who wrote it, its risk and features."""

    text_norm: str
    role: str = "user"
    risk: float = 0.0
    categories: tuple[str, ...] = ()
    features: tuple[float, ...] = ()
    ts: float = 0.0


@dataclass(frozen=True)
class Baseline:
    """Running mean and variance of a user's turn features (Welford)."""

    n: int
    mean: tuple[float, ...]
    var: tuple[float, ...]


class SessionStore(Protocol):
    """Where session turns live. Implementations: :class:`MemorySessionStore` (and an SQLite one)."""

    def history(self, session_id: str, limit: int = 50) -> list[Turn]:
        """The session's last ``limit`` turns, oldest first."""
        ...

    def append(self, session_id: str, turn: Turn, user_id: str | None = None) -> None:
        """Add a turn to the session (and to the user's baseline when ``user_id`` is given)."""
        ...

    def baseline(self, user_id: str) -> Baseline | None:
        """The user's feature baseline, if known."""
        ...


class MemorySessionStore:
    """In-memory, thread-safe, bounded store: an LRU of sessions, each keeping its last turns."""

    def __init__(self, max_sessions: int = 10_000, max_turns: int = 50, max_users: int = 10_000) -> None:
        self.max_sessions = max_sessions
        self.max_turns = max_turns
        self.max_users = max_users
        self._sessions: OrderedDict[str, list[Turn]] = OrderedDict()
        self._users: OrderedDict[str, tuple[int, np.ndarray, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def history(self, session_id: str, limit: int = 50) -> list[Turn]:
        """The session's last ``limit`` turns, oldest first."""
        with self._lock:
            turns = self._sessions.get(session_id)
            if turns is None:
                return []
            self._sessions.move_to_end(session_id)
            return list(turns[-limit:]) if limit > 0 else []

    def append(self, session_id: str, turn: Turn, user_id: str | None = None) -> None:
        """Add a turn, evicting the oldest turn and the least recently used session past the bounds."""
        with self._lock:
            turns = self._sessions.setdefault(session_id, [])
            self._sessions.move_to_end(session_id)
            turns.append(turn)
            if len(turns) > self.max_turns:
                del turns[: len(turns) - self.max_turns]
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            if user_id is not None and turn.features:
                self._update_user(user_id, np.asarray(turn.features, dtype=np.float64))

    def _update_user(self, user_id: str, x: np.ndarray) -> None:
        n, mean, m2 = self._users.get(user_id, (0, np.zeros_like(x), np.zeros_like(x)))
        if mean.shape != x.shape:
            n, mean, m2 = 0, np.zeros_like(x), np.zeros_like(x)
        n += 1
        delta = x - mean
        mean = mean + delta / n
        m2 = m2 + delta * (x - mean)
        self._users[user_id] = (n, mean, m2)
        self._users.move_to_end(user_id)
        while len(self._users) > self.max_users:
            self._users.popitem(last=False)

    def baseline(self, user_id: str) -> Baseline | None:
        """The user's running feature mean and variance (None before the first turn)."""
        with self._lock:
            got = self._users.get(user_id)
        if got is None:
            return None
        n, mean, m2 = got
        var = m2 / (n - 1) if n > 1 else np.zeros_like(m2)
        return Baseline(n, tuple(float(v) for v in mean), tuple(float(v) for v in var))


def excerpt_for_store(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The stored form of a turn: NFKC, casefolded, whitespace collapsed, secrets masked, bounded."""
    text = unicodedata.normalize("NFKC", text[: 4 * limit]).casefold()
    return redact(" ".join(text.split()))[:limit]


def _sentences(text: str) -> list[str]:
    out, cur = [], []
    for ch in text:
        cur.append(ch)
        if ch in ".!?\n":
            s = "".join(cur).strip()
            if s:
                out.append(s)
            cur = []
    s = "".join(cur).strip()
    if s:
        out.append(s)
    return out


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c == "'" else " " for c in text.casefold()).split()


# Fragment definitions (RE2, linear time) on the casefolded excerpt.
_Q_OPEN, _Q_CLOSE = "\"“‘«", "\"”’»"
_NAMED = re2.compile(r"\b([a-z_][a-z0-9_]{0,15}) ?(?:=|:=) ?[" + _Q_OPEN + r"']([^" + _Q_CLOSE + r"'\n]{1,300})["
                     + _Q_CLOSE + r"']")
_LET = re2.compile(r"\b(?:let|set|define|call) ([a-z_][a-z0-9_]{0,15}) (?:be|mean|equal|equal to|stand for|hold) ["
                   + _Q_OPEN + r"']([^" + _Q_CLOSE + r"'\n]{1,300})[" + _Q_CLOSE + r"']")
_REMEMBER = re2.compile(r"\b(?:remember|memori[sz]e|store|save|keep|note|hold|jot|add|put|list|collect|log|write down)"
                        r"\b[^" + _Q_OPEN + r"'\n]{0,40}[" + _Q_OPEN + r"']([^" + _Q_CLOSE + r"'\n]{1,300})[" + _Q_CLOSE
                        + r"']")
_PART = re2.compile(r"\b(?:part|piece|fragment|chunk|segment|section|word|bit|line) ?"
                    r"([0-9]+|one|two|three|four|five|a|b|c|d|e) ?"
                    r"[:=-] ?[" + _Q_OPEN + r"']?([^" + _Q_CLOSE + r"'\n]{1,300})")
#: A quotation opened in one turn and closed in a later one (a payload told as a story over turns).
_QUOTE = re2.compile(r"[\"“«]([^\"”»]+)[\"”»]")
_VOCATIVE = re2.compile(r"^\s*(?:dear )?[a-z][a-z'-]{0,20}, ")
#: Steps of the current turn that ask to act on assembled text (``data/chains/steps.yaml``).
_ACT_STEPS = frozenset({"execute", "follow_doc", "act_on_text"})
_ORDINAL = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "a": 1, "b": 2, "c": 3, "d": 4, "e": 5}


@dataclass(frozen=True)
class Fragment:
    """A piece of text a turn stored for later: its name (if any), order key and value."""

    name: str
    order: tuple[int, int]
    value: str


def fragments(text: str, turn_index: int) -> list[Fragment]:
    """The fragments a turn defines (named variables, remembered phrases, numbered parts)."""
    out: list[Fragment] = []
    for pat in (_NAMED, _LET):
        for m in pat.finditer(text):
            out.append(Fragment(m.group(1), (turn_index, m.start()), m.group(2).strip()))
    for m in _REMEMBER.finditer(text):
        if not any(f.value == m.group(1).strip() for f in out):
            out.append(Fragment("", (turn_index, m.start()), m.group(1).strip()))
    for m in _PART.finditer(text):
        key = m.group(1)
        num = int(key) if key.isdigit() else _ORDINAL.get(key, 0)
        value = m.group(2).strip().rstrip(".,;")
        if value and not any(value in f.value or f.value in value for f in out):
            out.append(Fragment(f"part{num}", (num * 1000 + turn_index, m.start()), value))
    return out


@dataclass
class AnalyzerOptions:
    """Thresholds of the session analysis (tuned on the tuning split only)."""

    window: int = 8                 # recent user turns considered
    monitor: float = 0.5            # the policy's flag line (assembled scans must reach it)
    assembly_margin: float = 0.15   # assembled risk must exceed every part's risk by this much
    unasked_assembly_score: float = 0.4  # fragments assembled without a request to act on them: evidence only
    max_assembled_chars: int = 4000
    across_max_turns: int = 4       # longest run of neighbouring turns judged as one text written across them
    crescendo_min_turns: int = 3
    crescendo_min_level: float = 0.45
    crescendo_min_rise: float = 0.35
    crescendo_min_elevated: int = 2   # earlier turns above 0.1: the rise must be gradual
    crescendo_min_slope: float = 0.07
    probe_window: int = 12
    probe_similarity: float = 0.6
    probe_min_cluster: int = 4
    probe_min_pressure: float = 0.25
    probe_min_tagged: float = 0.5   # share of the near-duplicates that make an attack step (no refusal needed)
    soft_weight: float = 0.0        # weight of the classifier's raw probability in a turn's level (noisy: 0 on tune)
    anomaly_min_turns: int = 4
    anomaly_z: float = 4.0
    anomaly_min_level: float = 0.4
    anomaly_score: float = 0.35
    use_lyapunov: bool = False      # add a chaotic-trajectory term to the anomaly finding
    lyapunov_min_turns: int = 8
    chain_base: float = 0.6
    chain_dtw_max: float | None = None   # when set, a chain match also needs DTW distance <= this
    extra: dict[str, float] = field(default_factory=dict)


Scan = Callable[[str], Verdict]


class SessionAnalyzer:
    """Finds multi-turn attacks in a session's history plus the current turn."""

    def __init__(self, chains: ChainLibrary | None = None, options: AnalyzerOptions | None = None,
                 assembled: AssembledCheck | None = None, **overrides: float | int | bool | None) -> None:
        self.chains = chains if chains is not None else load_chains()
        self.assembled = assembled if assembled is not None else load_assembled()
        opts = options or AnalyzerOptions()
        for k, v in overrides.items():
            if not hasattr(opts, k):
                raise TypeError(f"unknown analyzer option {k!r}")
            setattr(opts, k, v)
        self.options = opts

    @property
    def history_limit(self) -> int:
        """How many stored turns :meth:`analyze` looks at."""
        return max(self.options.window, self.options.probe_window) * 2

    def features(self, text: str, risk: float, soft: float | None = None) -> tuple[float, ...]:
        """The per-turn feature vector (see ``FEATURE_NAMES``)."""
        tags = self.chains.tags(text)
        words = _words(text[:EXCERPT_CHARS * 4])
        nw = max(1, len(words))
        sents = _sentences(text[:EXCERPT_CHARS * 4]) or [""]
        question = sum(s.endswith("?") for s in sents) / len(sents)
        imperative = sum(bool(w) and w[0] in _IMPERATIVE for w in (_words(s)[:1] for s in sents)) / len(sents)
        return (
            float(risk),
            float(risk if soft is None else soft),
            self.chains.pressure(tags),
            min(1.0, math.log1p(len(text)) / 8),
            question,
            min(1.0, 5 * sum(w in _META for w in words) / nw),
            min(1.0, 5 * sum(w in _YOU for w in words) / nw),
            imperative,
        )

    def turn(self, text: str, risk: float, *, role: str = "user", categories: Sequence[str] = (),
             features: Sequence[float] | None = None, ts: float | None = None) -> Turn:
        """The record to store for a scanned turn."""
        return Turn(excerpt_for_store(text), str(role), float(risk), tuple(str(c) for c in categories),
                    tuple(features) if features is not None else self.features(text, risk),
                    time.time() if ts is None else ts)

    def analyze(self, history: Sequence[Turn], current_text: str, current_risk: float, scan: Scan, *,
                current_features: Sequence[float] | None = None, baseline: Baseline | None = None) -> list[Finding]:
        """Findings about the session given its ``history`` (oldest first) and the current turn.

        ``scan`` scans a text with the single-turn detectors only (no session analysis, no store).
        """
        o = self.options
        feats = tuple(current_features) if current_features is not None else self.features(current_text,
                                                                                             current_risk)
        current = Turn(excerpt_for_store(current_text), "user", current_risk, (), feats)
        users = [*[t for t in history if t.role == "user"][-(max(o.window, o.probe_window) - 1):], current]
        recent = users[-o.window:]
        tags = [self.chains.tags(t.text_norm) for t in recent]
        out: list[Finding] = []
        out += self._split_payload(recent, tags, scan)
        out += self._crescendo(recent)
        out += self._probing(users[-o.probe_window:])
        out += self._chains(recent, tags)
        out += self._anomaly(users, baseline)
        return out

    # -- split payloads ---------------------------------------------------------------------------

    def _split_payload(self, turns: list[Turn], tags: list[frozenset[str]], scan: Scan) -> list[Finding]:
        o = self.options
        frags: list[Fragment] = []
        for i, t in enumerate(turns):
            frags += fragments(t.text_norm, i)
        cur_frags = [f for f in frags if f.order[0] % 1000 == len(turns) - 1 or f.order[0] == len(turns) - 1]
        assembling = bool(tags[-1] & {"combine", "execute"})
        asked = bool(tags[-1] & _ACT_STEPS)  # the current turn asks to act on the pieces
        # (how, text, acted on, also scanned by the single-message detectors)
        candidates: list[tuple[str, str, bool, bool]] = []
        if len(frags) >= 2 and (assembling or cur_frags):
            ordered = self._order(frags, turns[-1].text_norm)
            candidates.append(("fragments", " ".join(f.value for f in ordered), asked, True))
        quoted = self._cross_quotes(turns)
        if quoted:
            candidates.append(("quotation told over turns", quoted, True, True))
        if asked and len(turns) >= 3:  # judged by the assembled-instruction check only
            pieces = self._quoted_pieces(turns[:-1])
            if pieces:
                candidates.append(("quoted pieces of recent turns", pieces, True, False))
            across = self._across(turns[:-1])
            if across:
                candidates.append(("text written across recent turns", across, True, False))
        if not candidates:
            return []
        parts_risk = max(t.risk for t in turns[-4:]) if turns else 0.0
        if frags:
            parts_risk = max(parts_risk, max(turns[f.order[0] % 1000].risk for f in frags
                                             if f.order[0] % 1000 < len(turns)))
        check = self.assembled
        parts_check = max(check.score(t.text_norm).score for t in turns)
        best: Finding | None = None
        for how, text, act, scanned in candidates:
            text = text[: o.max_assembled_chars]
            risk, cat, why = 0.0, Category.PROMPT_INJECTION, ""
            if scanned:
                verdict = scan(text)
                if verdict.risk >= o.monitor and verdict.risk >= parts_risk + o.assembly_margin:
                    risk = min(1.0, verdict.risk)
                    cat = next((c for c in verdict.categories if c is not Category.OBFUSCATION),
                               Category.PROMPT_INJECTION)
                    why = (f"scanned whole, it scores {verdict.risk:.2f}; "
                           f"the riskiest single part scored {parts_risk:.2f}")
            a = check.score(text)
            if a.score >= o.monitor and a.score >= parts_check + o.assembly_margin and a.score > risk:
                risk, cat = a.score, a.category or Category.PROMPT_INJECTION
                why = (f"it reads as an instruction to the assistant ({a.why()}, {a.score:.2f}); "
                       f"no single turn does ({parts_check:.2f})")
            if risk <= 0:
                continue
            score = risk if act else min(risk, o.unasked_assembly_score)
            f = Finding(DETECTOR, "session.split_payload", cat, score, 7, None, excerpt(text, 0, len(text)),
                        f"the {how}, put together: {why}" + ("" if act else "; no turn asked to act on it yet"))
            if best is None or f.score > best.score:
                best = f
        return [best] if best else []

    @staticmethod
    def _cross_quotes(turns: list[Turn]) -> str:
        """Quotations that open in one recent turn and close in a later one, joined ("" if none)."""
        if len(turns) < 3:
            return ""
        starts, joined, pos = [], [], 0
        for t in turns:
            starts.append(pos)
            joined.append(t.text_norm)
            pos += len(t.text_norm) + 1
        text = " ".join(joined)
        out = []
        for m in _QUOTE.finditer(text):
            first = sum(s <= m.start() for s in starts)
            last = sum(s <= m.end() - 1 for s in starts)
            if last > first and len(m.group(1)) >= 8:
                out.append(_VOCATIVE.sub("", m.group(1), count=1))  # "pim, please …" is addressed to a character
        return " ".join(out)

    def _across(self, turns: list[Turn]) -> str:
        """The sentence written across 2 to ``across_max_turns`` neighbouring turns that reads most as an
        instruction ("" if none).

        Cue groups must meet in one sentence of a few neighbouring turns, so two remarks of a chat
        ("a plan with no limits?" … "you are the best") do not make an instruction together.
        """
        best, best_score = "", 0.0
        n = len(turns)
        for k in range(2, min(self.options.across_max_turns, n) + 1):
            for i in range(n - k + 1):
                for sent in _sentences(" ".join(t.text_norm for t in turns[i:i + k])):
                    sc = self.assembled.score(sent).score
                    if sc > best_score:
                        best, best_score = sent, sc
        return best

    @staticmethod
    def _quoted_pieces(turns: list[Turn]) -> str:
        """The quotations inside each recent turn, in order, when at least two turns hold one ("" if not)."""
        out: list[str] = []
        holders = 0
        for t in turns:
            got = [m.group(1) for m in _QUOTE.finditer(t.text_norm)]
            holders += bool(got)
            out += got
        return " ".join(out) if holders >= 2 else ""

    @staticmethod
    def _order(frags: list[Fragment], current: str) -> list[Fragment]:
        """Fragments in the order the current turn names them, else part number / definition order."""
        named = {f.name: f for f in frags if f.name and not f.name.startswith("part")}
        words = _words(current)
        mentioned = [named[w] for w in dict.fromkeys(words) if w in named]
        if len(mentioned) >= 2:
            return mentioned + [f for f in frags if f not in mentioned]
        return sorted(frags, key=lambda f: f.order)

    # -- crescendo ----------------------------------------------------------------------------------

    def _level(self, t: Turn) -> float:
        f = t.features
        soft = self.options.soft_weight * f[1] if len(f) > 1 else 0.0
        return max(t.risk, soft, f[2] if len(f) > 2 else 0.0)

    def _crescendo(self, turns: list[Turn]) -> list[Finding]:
        o = self.options
        if len(turns) < o.crescendo_min_turns:
            return []
        p = np.asarray([self._level(t) for t in turns[-6:]])
        cur = float(p[-1])
        rise = cur - float(p[:-1].min())
        slope = float(np.polyfit(np.arange(len(p)), p, 1)[0])
        steps_up = int((np.diff(p) > 0.02).sum())
        elevated = int((p[:-1] > 0.1).sum())
        if (cur >= o.crescendo_min_level and rise >= o.crescendo_min_rise and slope >= o.crescendo_min_slope
                and steps_up >= 2 and elevated >= o.crescendo_min_elevated):
            score = min(0.9, 0.5 + 0.5 * (rise - o.crescendo_min_rise) + 0.5 * slope)
            return [Finding(DETECTOR, "session.crescendo", Category.JAILBREAK, score, 6, None,
                            " → ".join(f"{x:.2f}" for x in p),
                            f"pressure rose by {rise:.2f} over {len(p)} turns (slope {slope:.2f}/turn, "
                            f"{steps_up} rises)")]
        return []

    # -- probing ------------------------------------------------------------------------------------

    def _probing(self, turns: list[Turn]) -> list[Finding]:
        o = self.options
        if len(turns) < o.probe_min_cluster:
            return []
        norm = [normalize_turn(t.text_norm) for t in turns]
        near = near_duplicates(norm[:-1], norm[-1], o.probe_similarity)
        if len(near) + 1 < o.probe_min_cluster:
            return []
        members = [turns[i] for i in near] + [turns[-1]]
        refused = sum(t.risk >= o.monitor for t in members[:-1])
        level = max(self._level(t) for t in members)
        tagged = sum(self.chains.pressure(self.chains.tags(t.text_norm)) >= 0.2 for t in members) / len(members)
        if refused:
            score = 0.8
        elif level >= o.probe_min_pressure and tagged >= o.probe_min_tagged:
            score = 0.55
        else:
            return []
        return [Finding(DETECTOR, "session.probing", Category.ANOMALY, score, 5, None,
                        redact(f"{len(members)} near-duplicate attempts"),
                        f"{len(members)} near-duplicate turns in the last {len(turns)}, {refused} of them "
                        f"flagged before: repeated attempts with small mutations")]

    # -- chains -------------------------------------------------------------------------------------

    def _chains(self, turns: list[Turn], tags: list[frozenset[str]]) -> list[Finding]:
        o = self.options
        if len(turns) < 2:
            return []
        feats = np.asarray([self._vec(t) for t in turns])
        matches = self.chains.match(tags, feats, self._prototype)
        for m in matches:
            if o.chain_dtw_max is not None and not m.dtw <= o.chain_dtw_max:
                continue
            k = len(m.chain.steps)
            score = min(0.9, o.chain_base + 0.05 * (k - 2)) * m.fraction
            return [Finding(DETECTOR, f"session.chain:{m.chain.id}", m.chain.category, score, 6, None,
                            m.chain.title[:80],
                            f"turns follow the chain '{m.chain.title}' ({m.fraction:.0%} of {k} steps; "
                            f"DTW distance {m.dtw:.2f})")]
        return []

    def _vec(self, t: Turn) -> tuple[float, ...]:
        f = t.features
        return (self._level(t), *tuple(f[4:8])) if len(f) >= 8 else (self._level(t), 0.0, 0.0, 0.0, 0.0)

    def _prototype(self, example: str) -> tuple[float, ...]:
        return self._vec(Turn(example, features=self.features(example, 0.0, 0.0)))

    # -- anomaly ------------------------------------------------------------------------------------

    def _anomaly(self, turns: list[Turn], baseline: Baseline | None) -> list[Finding]:
        o = self.options
        levels = [self._level(t) for t in turns]
        cur = levels[-1]
        notes = []
        score = 0.0
        if len(levels) - 1 >= o.anomaly_min_turns and cur >= o.anomaly_min_level:
            prev = np.asarray(levels[:-1])
            z = (cur - prev.mean()) / (prev.std() + 0.05)
            if z >= o.anomaly_z:
                score = o.anomaly_score
                notes.append(f"level {cur:.2f} is {z:.1f} sd above this session's turns")
        if baseline is not None and baseline.n >= 20 and len(baseline.mean) > 2 and cur >= o.anomaly_min_level:
            mu = max(baseline.mean[1], baseline.mean[2])
            sd = math.sqrt(max(baseline.var[1], baseline.var[2]))
            z = (cur - mu) / (sd + 0.05)
            if z >= o.anomaly_z:
                score = max(score, o.anomaly_score)
                notes.append(f"{z:.1f} sd above the user's baseline")
        if o.use_lyapunov and len(levels) >= o.lyapunov_min_turns:
            st = classify(levels)
            if st.kind == CHAOTIC:
                score = min(1.0, score + 0.15)
                notes.append(f"trajectory chaotic (Lyapunov exponent {st.exponent:.2f})")
        if score <= 0:
            return []
        return [Finding(DETECTOR, "session.anomaly", Category.ANOMALY, score, 4, None, "", "; ".join(notes))]
