"""Deterministic synthetic training data for the AIMDS classifier.

Every text comes from a small template grammar written for this project
(``aimds/data/augment/*.yaml``); nothing is copied from public attack corpora. The same seed gives
the same rows on every platform: all randomness flows from ``random.Random`` instances seeded with
strings (SHA-512 based), never from the global generator or ``hash()``.

Grammar syntax, used in slot entries and templates:

* ``{name}``     one random entry of slot ``name``, itself expanded;
* ``{a|b|c}``    one inline alternative (alternatives may nest braces; ``{x|}`` is an optional x);
* ``{?name}``    slot ``name`` half of the time, otherwise nothing;
* ``{$name}``    a sticky slot: expanded once per text, then reused (a persona's name, say);
* ``{#name}``    a generated value (numbers, tokens, base64 of benign data, ...), see ``_FUNCS``;
* ``{{`` ``}}``  literal braces.

``python -m aimds.train.augment --seed 13 --out rows.jsonl`` writes the rows as JSONL and prints
per-family counts.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import random
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from aimds.errors import ConfigError

CATEGORIES = (
    "prompt_injection",
    "indirect_injection",
    "jailbreak",
    "prompt_leak",
    "obfuscation",
    "benign",
    "benign_hard",
)
_MAX_DEPTH = 40
PREBOUND_VARS = frozenset({"enc", "join", "method_name", "shift"})  # {$...} values the generator always binds
_ENC = "\x00\x01\x02"  # placeholder for an encoded payload, substituted after surface variation


class GrammarError(ConfigError):
    """A template or slot file of the augmentation grammar is malformed."""


# --------------------------------------------------------------------------------------------
# Grammar
# --------------------------------------------------------------------------------------------

Node = Any  # str | tuple[str, Any]


def _match_brace(t: str, i: int) -> int:
    depth = 0
    for j in range(i, len(t)):
        if t[j] == "{":
            depth += 1
        elif t[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise GrammarError(f"unbalanced brace in template: {t[:80]!r}")


def _split_top(s: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for j, c in enumerate(s):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(s[start:j])
            start = j + 1
    parts.append(s[start:])
    return parts


def _is_name(s: str) -> bool:
    return bool(s) and all(c.isalnum() or c == "_" for c in s) and s.isascii()


@cache
def _parse(t: str) -> tuple[Node, ...]:
    out: list[Node] = []
    buf: list[str] = []
    i, n = 0, len(t)
    while i < n:
        c = t[i]
        if c == "{":
            if t.startswith("{{", i):
                buf.append("{")
                i += 2
                continue
            j = _match_brace(t, i)
            if buf:
                out.append("".join(buf))
                buf = []
            out.append(_node(t[i + 1 : j], t))
            i = j + 1
        elif c == "}":
            if t.startswith("}}", i):
                buf.append("}")
                i += 2
                continue
            raise GrammarError(f"stray '}}' in template: {t[:80]!r}")
        else:
            buf.append(c)
            i += 1
    if buf:
        out.append("".join(buf))
    return tuple(out)


def _node(inner: str, template: str) -> Node:
    parts = _split_top(inner)
    if len(parts) > 1:
        return ("alt", tuple(_parse(p) for p in parts))
    for prefix, kind in (("?", "opt"), ("$", "var"), ("#", "fn")):
        if inner.startswith(prefix) and _is_name(inner[1:]):
            return (kind, inner[1:])
    if _is_name(inner):
        return ("slot", inner)
    raise GrammarError(f"bad reference {{{inner}}} in template: {template[:80]!r}")


class Grammar:
    """Slots of alternative strings, expanded recursively with a caller's ``random.Random``."""

    def __init__(self, slots: dict[str, list[str]], langs: dict[str, dict[str, list[str]]]) -> None:
        self.slots = slots
        self.langs = langs

    def refs(self) -> set[tuple[str, str]]:
        """Every ``(kind, name)`` reference used in any slot entry (for validation)."""
        found: set[tuple[str, str]] = set()

        def walk(nodes: Iterable[Node]) -> None:
            for nd in nodes:
                if isinstance(nd, str):
                    continue
                if nd[0] == "alt":
                    for alt in nd[1]:
                        walk(alt)
                else:
                    found.add((nd[0], nd[1]))

        entries = [e for v in self.slots.values() for e in v]
        entries += [e for d in self.langs.values() for v in d.values() for e in v]
        for e in entries:
            walk(_parse(e))
        return found

    def expand(self, template: str, rng: random.Random, env: dict[str, str] | None = None) -> str:
        """Expand ``template``; ``env`` holds sticky values (pre-bound or bound on first use)."""
        env = {} if env is None else env
        out: list[str] = []
        self._walk(_parse(template), rng, env, out, 0)
        return "".join(out)

    def pick(self, slot: str, rng: random.Random, env: dict[str, str] | None = None) -> str:
        """Expand one random entry of ``slot``."""
        return self.expand("{" + slot + "}", rng, env)

    def _choice(self, name: str, rng: random.Random) -> str:
        try:
            return rng.choice(self.slots[name])
        except KeyError:
            raise GrammarError(f"unknown slot {name!r}") from None

    def _walk(self, nodes: Sequence[Node], rng: random.Random, env: dict[str, str], out: list[str],
              depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise GrammarError("grammar recursion too deep")
        for nd in nodes:
            if isinstance(nd, str):
                out.append(nd)
                continue
            kind, arg = nd
            if kind == "alt":
                self._walk(rng.choice(arg), rng, env, out, depth + 1)
            elif kind == "slot":
                self._walk(_parse(self._choice(arg, rng)), rng, env, out, depth + 1)
            elif kind == "opt":
                if rng.random() < 0.5:
                    self._walk(_parse(self._choice(arg, rng)), rng, env, out, depth + 1)
            elif kind == "var":
                if arg not in env:
                    sub: list[str] = []
                    self._walk(_parse(self._choice(arg, rng)), rng, env, sub, depth + 1)
                    env[arg] = "".join(sub)
                out.append(env[arg])
            else:
                out.append(_call(arg, rng))


@cache
def load_grammar() -> Grammar:
    """Load and merge every ``aimds/data/augment/*.yaml`` file (``slots:`` and ``langs:``)."""
    slots: dict[str, list[str]] = {}
    langs: dict[str, dict[str, list[str]]] = {}
    root = resources.files("aimds") / "data" / "augment"
    files = sorted((p for p in root.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    if not files:
        raise GrammarError(f"no grammar files under {root}")
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, entries in (data.get("slots") or {}).items():
            if name in slots:
                raise GrammarError(f"{path.name}: slot {name!r} defined twice")
            slots[name] = _entries(entries, f"{path.name}:{name}")
        for code, table in (data.get("langs") or {}).items():
            dest = langs.setdefault(code, {})
            for key, entries in table.items():
                if key in dest:
                    raise GrammarError(f"{path.name}: {code}.{key} defined twice")
                dest[key] = _entries(entries, f"{path.name}:{code}.{key}")
    return Grammar(slots, langs)


def _entries(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise GrammarError(f"{where}: expected a non-empty list")
    out = []
    for e in raw:
        if e is None:
            e = ""
        if not isinstance(e, str | int | float):
            raise GrammarError(f"{where}: entries must be strings, got {e!r}")
        out.append(str(e))
    return out


# --------------------------------------------------------------------------------------------
# Generated values for {#name}
# --------------------------------------------------------------------------------------------

_BENIGN_PLAIN = (
    "hello world", "The quick brown fox jumps over the lazy dog.", "user_id=4821&lang=en",
    "meeting moved to 3pm", "{\"status\": \"ok\", \"count\": 12}", "Happy birthday, Anna!",
    "version 2.4.1 release notes", "lorem ipsum dolor sit amet", "Grocery list: eggs, milk, bread",
    "Password reset link expires in 24 hours", "2024-05-17T09:30:00Z", "see you at the station",
    "{\"city\": \"Lyon\", \"temp\": 18.5}", "order #55821 shipped", "I love this song",
)

_BENIGN_SENT = (
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "Meet me at the library at noon.", "The treasure is buried under the old oak tree.",
    "Happy anniversary, love you lots!", "The answer to the riddle is a shadow.",
    "Don't forget to buy milk on the way home.", "What has keys but can't open locks? A piano.",
)


def _rand_token(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


_FUNCS: dict[str, Callable[[random.Random], str]] = {
    "num": lambda r: str(r.randint(2, 99)),
    "big": lambda r: str(r.randint(100, 99999)),
    "amount": lambda r: f"{r.randint(5, 9999)}.{r.randint(0, 99):02d}",
    "year": lambda r: str(r.randint(1990, 2026)),
    "ver": lambda r: f"{r.randint(1, 9)}.{r.randint(0, 20)}",
    "time": lambda r: f"{r.randint(7, 19)}:{r.choice(['00', '15', '30', '45'])}",
    "day": lambda r: str(r.randint(1, 28)),
    "date": lambda r: f"{r.randint(2022, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
    "ticket": lambda r: f"{r.choice(['INC', 'SEC', 'OPS', 'CHG', 'REQ'])}-{r.randint(1000, 99999)}",
    "token": lambda r: _rand_token(r, r.randint(8, 24)),
    "hexid": lambda r: _rand_token(r, r.choice([8, 12, 16, 32, 40]), "0123456789abcdef"),
    "b64": lambda r: base64.b64encode(r.choice(_BENIGN_PLAIN).encode()).decode(),
    "b64b": lambda r: base64.b64encode(r.choice(_BENIGN_PLAIN).encode()).decode(),
    "hexb": lambda r: r.choice(_BENIGN_PLAIN).encode().hex(),
    "rot13b": lambda r: codecs.encode(r.choice(_BENIGN_SENT), "rot_13"),
    "revb": lambda r: r.choice(_BENIGN_SENT)[::-1],
    "spacedb": lambda r: " ".join(r.choice(["hello", "welcome", "thank you", "happy new year", "congrats"]).upper()),
    "b64raw": lambda r: base64.b64encode(bytes(r.randrange(256) for _ in range(r.choice([12, 18, 24, 33])))
                                         ).decode(),
    "iban": lambda r: f"{r.choice(['DE', 'GB', 'FR', 'NL', 'ES', 'IT', 'LT', 'CY'])}{r.randint(10, 99)}"
                      + "".join(str(r.randint(0, 9)) for _ in range(r.choice([16, 18, 20]))),
    "phone": lambda r: f"+{r.choice(['1', '44', '49', '33', '34', '39', '91'])} {r.randint(100, 999)} "
                       f"{r.randint(100, 999)} {r.randint(1000, 9999)}",
    "uuid": lambda r: "-".join(_rand_token(r, k, "0123456789abcdef") for k in (8, 4, 4, 4, 12)),
    "percent": lambda r: f"{r.randint(1, 99)}%",
    "stars": lambda r: "★" * (k := r.randint(1, 5)) + "☆" * (5 - k),
}


def _call(name: str, rng: random.Random) -> str:
    try:
        return _FUNCS[name](rng)
    except KeyError:
        raise GrammarError(f"unknown generator #{name}") from None


# --------------------------------------------------------------------------------------------
# Surface variation
# --------------------------------------------------------------------------------------------

_NEIGHBOURS = {
    "a": "qsz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo",
    "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "r": "et", "s": "ad",
    "t": "ry", "u": "yi", "v": "cb", "w": "qe", "y": "tu",
}


def tidy(text: str) -> str:
    """Collapse doubled spaces, drop spaces before , and ., capitalise line and sentence starts."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        indent = line[: len(line) - len(body)]
        while "  " in body:
            body = body.replace("  ", " ")
        body = _fix_punct(body)
        body = _capitalise(body)
        lines.append((indent + body).rstrip())
    return "\n".join(lines).strip()


def _fix_punct(s: str) -> str:
    """Drop a space before a sentence comma or full stop (not before ``./path`` or ``.env``)."""
    out: list[str] = []
    n = len(s)
    for i, c in enumerate(s):
        if c == " " and i + 1 < n and s[i + 1] in ",." and (i + 2 >= n or s[i + 2] in " \n\"'"):
            continue
        out.append(c)
    return "".join(out)


def _capitalise(s: str) -> str:
    chars = list(s)
    start = True
    for k, c in enumerate(chars):
        if start and c.isalpha():
            if c.islower() and not _word_at(s, k).startswith(("http", "www", "e.g", "i.e")):
                chars[k] = c.upper()
            start = False
        elif start and not c.isspace() and c not in "\"'“«¿¡*-([>#:":
            start = False
        if c in ".!?" and k + 1 < len(s) and s[k + 1] == " ":
            start = True
    return "".join(chars)


def _word_at(s: str, k: int) -> str:
    end = k
    while end < len(s) and not s[end].isspace():
        end += 1
    return s[k:end].lower()


def typos(text: str, rng: random.Random, k: int) -> str:
    """Introduce ``k`` keyboard-style typos into ASCII words of four letters or more."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 4 and w.isascii() and w.isalpha()]
    for i in rng.sample(idx, min(k, len(idx))):
        w = words[i]
        p = rng.randrange(1, len(w) - 1)
        op = rng.randrange(4)
        if op == 0:
            w = w[:p] + w[p + 1] + w[p] + w[p + 2 :]
        elif op == 1:
            w = w[:p] + w[p + 1 :]
        elif op == 2:
            w = w[:p] + w[p] + w[p:]
        else:
            near = _NEIGHBOURS.get(w[p].lower())
            if near:
                w = w[:p] + rng.choice(near) + w[p + 1 :]
        words[i] = w
    return " ".join(words)


def vary(text: str, rng: random.Random, *, noisy: bool = True) -> str:
    """Randomise register: casing, typos, trailing punctuation (used on short texts)."""
    r = rng.random()
    if r < 0.08:
        text = text.lower()
    elif r < 0.10 and len(text) < 300 and "\n" not in text:
        text = text.upper()
    if noisy and rng.random() < 0.15:
        text = typos(text, rng, rng.choice((1, 1, 2)))
    r = rng.random()
    if r < 0.10 and "\n" not in text:
        text = text.rstrip(".")
    elif r < 0.14:
        text = text.rstrip(".!") + rng.choice(["!!", "!!!", " :)", " thx", "...", " ok?", ". Thanks."])
    return text


# --------------------------------------------------------------------------------------------
# Encoders (obfuscation family) — each returns the encoded form; decoders are in the tests
# --------------------------------------------------------------------------------------------

LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "g": "9", "b": "8", "l": "1"}
HOMOGLYPHS = {
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і", "s": "ѕ", "j": "ј",
    "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р", "T": "Т",
    "X": "Х",
}
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")


def enc_base64(s: str) -> str:
    """Base64 of the UTF-8 bytes."""
    return base64.b64encode(s.encode()).decode()


def enc_hex(s: str, rng: random.Random) -> str:
    """Hex of the UTF-8 bytes, plain, spaced or as ``\\x`` escapes."""
    h = s.encode().hex()
    style = rng.randrange(3)
    if style == 1:
        return " ".join(h[i : i + 2] for i in range(0, len(h), 2))
    if style == 2:
        return "".join("\\x" + h[i : i + 2] for i in range(0, len(h), 2))
    return h


def enc_rot13(s: str) -> str:
    """ROT13."""
    return codecs.encode(s, "rot_13")


def enc_reverse(s: str) -> str:
    """The characters in reverse order."""
    return s[::-1]


def enc_leet(s: str, rng: random.Random) -> str:
    """Leetspeak with a random density."""
    p = rng.uniform(0.5, 1.0)
    return "".join(LEET[c.lower()] if c.lower() in LEET and rng.random() < p else c for c in s)


def enc_spaced(s: str, rng: random.Random) -> str:
    """Letters separated by a space, dot, dash or slash (words by a wider gap)."""
    sep = rng.choice([" ", ".", "-", " ", "_"])
    gap = {" ": "   ", ".": " ", "-": " ", "_": " "}[sep]
    return gap.join(sep.join(w) for w in s.split(" "))


def enc_zero_width(s: str, rng: random.Random) -> str:
    """Zero-width characters inserted between letters."""
    out = []
    for c in s:
        out.append(c)
        if c.isalpha() and rng.random() < 0.6:
            out.append(rng.choice(ZERO_WIDTH))
    return "".join(out)


def enc_tags(s: str) -> str:
    """Unicode tag characters: U+E0000 + ASCII code (invisible in most renderers)."""
    return "".join(chr(0xE0000 + ord(c)) for c in s if 0x20 <= ord(c) < 0x7F)


def enc_homoglyph(s: str, rng: random.Random) -> str:
    """Latin letters swapped for Cyrillic look-alikes."""
    p = rng.uniform(0.4, 1.0)
    return "".join(HOMOGLYPHS[c] if c in HOMOGLYPHS and rng.random() < p else c for c in s)


def enc_fullwidth(s: str) -> str:
    """Full-width forms (U+FF01..U+FF5E; space → ideographic space)."""
    return "".join(chr(ord(c) + 0xFEE0) if 0x21 <= ord(c) <= 0x7E else ("\u3000" if c == " " else c)
                   for c in s)


MORSE = {
    "a": ".-", "b": "-...", "c": "-.-.", "d": "-..", "e": ".", "f": "..-.", "g": "--.", "h": "....", "i": "..",
    "j": ".---", "k": "-.-", "l": ".-..", "m": "--", "n": "-.", "o": "---", "p": ".--.", "q": "--.-", "r": ".-.",
    "s": "...", "t": "-", "u": "..-", "v": "...-", "w": ".--", "x": "-..-", "y": "-.--", "z": "--..",
    "0": "-----", "1": ".----", "2": "..---", "3": "...--", "4": "....-", "5": ".....", "6": "-....",
    "7": "--...", "8": "---..", "9": "----.", ".": ".-.-.-", ",": "--..--", "?": "..--..", "'": ".----.",
    "!": "-.-.--", "@": ".--.-.", ":": "---...", "-": "-....-", "/": "-..-.", "\"": ".-..-.",
}


def enc_morse(s: str) -> str:
    """International Morse code; letters split by spaces, words by `` / `` (unknown characters dropped)."""
    return " / ".join(" ".join(MORSE[c] for c in w.lower() if c in MORSE) for w in s.split(" ") if w)


def enc_binary(s: str) -> str:
    """Each UTF-8 byte as eight binary digits, space separated."""
    return " ".join(f"{b:08b}" for b in s.encode())


def enc_caesar(s: str, shift: int) -> str:
    """Caesar shift of ASCII letters by ``shift`` (1..25)."""
    out = []
    for c in s:
        if "a" <= c <= "z":
            out.append(chr((ord(c) - 97 + shift) % 26 + 97))
        elif "A" <= c <= "Z":
            out.append(chr((ord(c) - 65 + shift) % 26 + 65))
        else:
            out.append(c)
    return "".join(out)


def enc_url(s: str) -> str:
    """Percent-encoding of every byte."""
    return "".join(f"%{b:02X}" for b in s.encode())


def split_payload(s: str, rng: random.Random) -> list[str]:
    """Cut ``s`` into 3-6 pieces at random character offsets."""
    k = min(rng.randint(3, 6), max(2, len(s) // 4))
    cuts = sorted(rng.sample(range(1, len(s)), k - 1))
    bounds = [0, *cuts, len(s)]
    return [s[bounds[i] : bounds[i + 1]] for i in range(k)]


# --------------------------------------------------------------------------------------------
# Samples and families
# --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    """One generated text with its label; ``meta`` records how it was made (tests read it)."""

    text: str
    label: int
    category: str
    lang: str = "en"
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Ctx:
    g: Grammar
    rng: random.Random
    carriers: list[str]
    with_requests: bool = False  # the ``requests`` family is in this run: planted tasks at the start get a user's task

    def x(self, template: str, env: dict[str, str] | None = None) -> str:
        return tidy(self.g.expand(template, self.rng, env))

    def pick(self, slot: str, env: dict[str, str] | None = None) -> str:
        return tidy(self.g.pick(slot, self.rng, env))

    def p(self, prob: float) -> bool:
        return self.rng.random() < prob


# ---- shared builders -------------------------------------------------------------------------

def _lang_of(text: str) -> str:
    """A crude script-based language guess for caller-supplied carriers."""
    counts: Counter[str] = Counter()
    for c in text[:2000]:
        o = ord(c)
        if c.isascii():
            if c.isalpha():
                counts["en"] += 1
        elif 0x0400 <= o <= 0x04FF:
            counts["ru"] += 1
        elif 0x0600 <= o <= 0x06FF:
            counts["ar"] += 1
        elif 0x0900 <= o <= 0x097F:
            counts["hi"] += 1
        elif 0x0E00 <= o <= 0x0E7F:
            counts["th"] += 1
        elif 0x0370 <= o <= 0x03FF:
            counts["el"] += 1
        elif 0x3040 <= o <= 0x30FF:
            counts["ja"] += 3
        elif 0xAC00 <= o <= 0xD7AF:
            counts["ko"] += 1
        elif 0x4E00 <= o <= 0x9FFF:
            counts["zh"] += 1
        elif 0x0980 <= o <= 0x09FF:
            counts["bn"] += 1
    return counts.most_common(1)[0][0] if counts else "en"


_HIDERS = {
    "html": ("<!-- {p} -->", '<div style="display:none">{p}</div>',
             '<p style="color:#ffffff;font-size:1px">{p}</p>', '<span hidden>{p}</span>',
             '<img src="/img/banner.png" alt="{p}">', "<p>{p}</p>", '<meta name="ai-note" content="{p}">'),
    "md": ("[//]: # ({p})", "<!-- {p} -->", "{p}", "> {p}", "**{p}**", "[^note]: {p}", "_{p}_"),
    "py": ("# {p}", '"""{p}"""', "# NOTE: {p}", "# TODO(ai): {p}"),
    "js": ("// {p}", "/* {p} */", "// NOTE: {p}"),
    "text": ("{p}", "{p}", "[{p}]", "({p})", "P.S. {p}", "--\n{p}", "Note: {p}"),
}
_KIND_HIDE = {
    "email": "text", "web": "html", "review": "text", "code_py": "py", "code_js": "js", "markdown": "md",
    "ticket": "text", "chat": "text", "resume": "text", "news": "text", "calendar": "text",
    "search": "text", "pdf": "text", "table": "text", "csv": "text", "json": "text", "external": "text",
    "qa": "md",
}
_DOC_KINDS = ("email", "web", "review", "code_py", "code_js", "markdown", "ticket", "chat", "resume",
              "news", "calendar", "search", "pdf", "table", "csv", "json", "qa")
_RAW_KINDS = {"code_py", "code_js", "table", "csv", "json", "web", "markdown", "qa"}


def _insert_blocks(blocks: list[str], payload: str, where: str, rng: random.Random) -> list[str]:
    if where == "start":
        return [payload, *blocks]
    if where == "end" or len(blocks) < 2:
        if where == "middle" and len(blocks) == 1:
            return _insert_sentence(blocks[0], payload, rng)
        return [*blocks, payload]
    k = rng.randint(1, len(blocks) - 1)
    return [*blocks[:k], payload, *blocks[k:]]


def _insert_sentence(text: str, payload: str, rng: random.Random) -> list[str]:
    cuts = [i + 2 for i in range(len(text) - 2) if text[i] in ".!?" and text[i + 1] == " "]
    if not cuts:
        return [text, payload]
    k = rng.choice(cuts)
    return [text[:k].rstrip() + " " + payload + " " + text[k:]]


def _table(ctx: _Ctx) -> list[list[str]]:
    """A header row and 3-7 body rows from one ``table_spec`` entry ("A|B|C; cell; cell; cell")."""
    spec = ctx.rng.choice(ctx.g.slots["table_spec"])
    header, *cols = [c.strip() for c in spec.split(";")]
    rows = [[ctx.g.expand(c, ctx.rng) for c in cols] for _ in range(ctx.rng.randint(3, 7))]
    return [header.split("|"), *rows]


def _render_table(table: list[list[str]], kind: str, payload: str | None, where: str,
                  rng: random.Random) -> str:
    header, rows = table[0], [list(r) for r in table[1:]]
    if payload is not None:
        mode = rng.randrange(3)
        if mode == 0:  # payload inside one cell
            r = rows[rng.randrange(len(rows))] if where == "middle" else rows[0 if where == "start" else -1]
            c = rng.randrange(len(r))
            r[c] = r[c] + " " + payload
        elif mode == 1:  # payload as its own row
            extra = [payload] + [""] * (len(header) - 1)
            pos = {"start": 0, "end": len(rows)}.get(where, rng.randint(1, len(rows)))
            rows.insert(pos, extra)
        # mode 2: payload as a note before or after the table (below)
    if kind == "csv":
        lines = [",".join(header)] + [",".join(f'"{c}"' if "," in c or " " in c else c for c in r)
                                      for r in rows]
    else:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    if payload is not None and payload not in text:
        text = payload + "\n\n" + text if where == "start" else text + "\n\n" + payload
    return text


def _json_doc(ctx: _Ctx, payload: str | None) -> str:
    kind = ctx.rng.choice(["search", "weather", "email", "files", "crm", "order", "calendar"])
    r, g = ctx.rng, ctx.g
    obj: dict[str, Any]
    text_fields: list[tuple[dict[str, Any], str]] = []
    if kind == "search":
        results = []
        for _ in range(r.randint(2, 4)):
            item = {"title": g.pick("news_headline", r).strip(), "url": g.pick("benign_url", r).strip(),
                    "snippet": g.pick("web_para", r).strip()}
            results.append(item)
            text_fields.append((item, "snippet"))
        obj = {"tool": "web_search", "query": g.pick("search_query", r).strip(), "results": results}
    elif kind == "weather":
        obj = {"tool": "get_weather", "city": g.pick("city", r), "temp_c": r.randint(-5, 35),
               "conditions": r.choice(["sunny", "light rain", "overcast", "snow showers", "windy"]),
               "advisory": g.pick("weather_note", r).strip()}
        text_fields.append((obj, "advisory"))
    elif kind == "email":
        msgs = []
        for _ in range(r.randint(1, 3)):
            m = {"from": g.pick("person_email", r).strip(), "subject": g.pick("email_subject", r).strip(),
                 "body": g.pick("email_body_para", r).strip()}
            msgs.append(m)
            text_fields.append((m, "body"))
        obj = {"tool": "read_inbox", "unread": len(msgs), "messages": msgs}
    elif kind == "files":
        files = [{"name": g.pick("file_name", r).strip(), "size_kb": r.randint(1, 9000),
                  "description": g.pick("file_desc", r).strip()} for _ in range(r.randint(2, 5))]
        text_fields += [(f, "description") for f in files]
        obj = {"tool": "list_files", "path": "/shared/" + g.pick("folder", r), "files": files}
    elif kind == "crm":
        obj = {"tool": "crm_lookup", "customer": g.pick("person", r).strip(), "tier": r.choice(["gold", "basic"]),
               "notes": g.pick("crm_note", r).strip()}
        text_fields.append((obj, "notes"))
    elif kind == "order":
        obj = {"tool": "order_status", "order_id": _call("big", r), "status": r.choice(
            ["shipped", "processing", "delivered", "returned"]), "carrier_message": g.pick("order_note", r).strip()}
        text_fields.append((obj, "carrier_message"))
    else:
        obj = {"tool": "calendar", "events": [{"title": g.pick("meeting_title", r).strip(),
                                               "time": _call("time", r),
                                               "description": g.pick("meeting_desc", r).strip()}]}
        text_fields.append((obj["events"][0], "description"))
    if payload is not None:
        target, key = r.choice(text_fields)
        if r.random() < 0.3:
            target["note"] = payload
        else:
            target[key] = payload if r.random() < 0.3 else target[key] + " " + payload
    indent = r.choice([None, 2, 2, 4])
    return json.dumps(obj, ensure_ascii=r.random() < 0.2, indent=indent)


def _doc(ctx: _Ctx, kind: str, payload: str | None, where: str) -> str:
    """Build a document of ``kind``; with ``payload``, hide it at ``where`` (start/middle/end)."""
    r = ctx.rng
    if kind == "json":
        return _json_doc(ctx, payload)
    if kind in ("table", "csv"):
        return _render_table(_table(ctx), kind, payload, where, r)
    if kind == "external":
        src = r.choice(ctx.carriers)
        if len(src) > 2500:
            cut = src.rfind("\n", 0, 2500)
            src = src[: cut if cut > 500 else 2500]
        blocks = [b for b in src.split("\n\n") if b.strip()] or [src]
    else:
        body = ctx.g.pick("doc_" + kind, r)
        body = body if kind in _RAW_KINDS else tidy(body)
        sep = "\n" if kind in ("code_py", "code_js", "web") else "\n\n"
        blocks = [b for b in body.split(sep)]
    if payload is None:
        if kind != "external" and r.random() < 0.4 and "doc_insert_" + kind in ctx.g.slots:
            ins = tidy(ctx.g.pick("doc_insert_" + kind, r))
            blocks = _insert_blocks(blocks, ins, where, r)
    else:
        hidden = r.choice(_HIDERS[_KIND_HIDE[kind]]).replace("{p}", payload)
        if kind in ("code_py", "code_js", "web") and where == "start" and blocks and blocks[0].startswith(
                ("<!DOCTYPE", "#!")):
            where = "middle"
        blocks = _insert_blocks(blocks, hidden, where, r)
    sep = "\n" if kind in ("code_py", "code_js", "web") else "\n\n"
    return sep.join(blocks)


def _wrap_task(ctx: _Ctx, kind: str, doc: str, always: bool = False) -> str:
    """Sometimes (``always``: always) put a user's (benign) request around a document, as an app would."""
    r = ctx.rng.random()
    task_slot = "task_" + kind if "task_" + kind in ctx.g.slots else "task_generic"
    if always:
        r = 0.45 + r * 0.55
    if r < 0.45:
        return doc
    task = ctx.pick(task_slot)
    if r < 0.85:
        return f"{task}\n\n{doc}"
    fence = "```" if kind.startswith("code") else ctx.rng.choice(['"""', "---", "<document>", "```"])
    close = "</document>" if fence == "<document>" else fence
    return f"{task}\n{fence}\n{doc}\n{close}"


def _pick_kind(ctx: _Ctx, weights: dict[str, float] | None = None, external: bool = True) -> str:
    kinds = list(_DOC_KINDS)
    w = [(weights or {}).get(k, 1.0) for k in kinds]
    if ctx.carriers and external:
        kinds.append("external")
        w.append(sum(w) * 0.5)
    return ctx.rng.choices(kinds, weights=w)[0]


def _greet_join(greet: str, text: str, lang: str) -> str:
    """Join a greeting and a sentence; after a comma, lower-case the sentence's first letter."""
    sp = "" if lang in ("zh", "ja") else " "
    if greet.endswith(",") and len(text) > 1 and text[0].isupper() and text[1].islower() and lang != "de":
        text = text[0].lower() + text[1:]
    return greet + sp + text


def _ml_attack(ctx: _Ctx, lang: str) -> tuple[str, str]:
    """One attack sentence written in ``lang``; returns (text, category)."""
    t = ctx.g.langs[lang]
    r = ctx.rng
    env: dict[str, str] = {}

    def one(key: str) -> str:
        return ctx.g.expand(r.choice(t[key]), r, env)

    sp = "" if lang in ("zh", "ja") else " "
    k = r.random()
    if k < 0.45:
        parts, cat = [one("ovr"), one("goal")], "prompt_injection"
        if r.random() < 0.3:
            parts[0] = _greet_join(one("greet"), parts[0], lang)
    elif k < 0.7:
        parts, cat = [one("leak")], "prompt_leak"
        if r.random() < 0.4:
            parts.insert(0, one("ovr"))
        elif r.random() < 0.3:
            parts[0] = _greet_join(one("greet"), parts[0], lang)
    else:
        parts, cat = [one("jb"), one("harm")], "jailbreak"
        if r.random() < 0.35:
            parts.insert(0, one("ovr"))
    return sp.join(parts).strip(), cat


def _sample_slot(ctx: _Ctx, slot: str, k: int, env: dict[str, str]) -> list[str]:
    """Expand ``k`` distinct entries of ``slot`` (sharing ``env``)."""
    entries = ctx.g.slots[slot]
    return [tidy(ctx.g.expand(e, ctx.rng, env)) for e in ctx.rng.sample(entries, min(k, len(entries)))]


def _list_block(ctx: _Ctx, items: list[str], headers: Sequence[str]) -> str:
    """Render items as a numbered list, a bullet list or a running paragraph."""
    style = ctx.rng.randrange(3)
    if style == 0:
        body = "\n".join(f"{i}. {t}" for i, t in enumerate(items, 1))
    elif style == 1:
        body = "\n".join(f"- {t}" for t in items)
    else:
        return " ".join(items)
    return f"{ctx.rng.choice(headers)}\n{body}"


# ---- attack families -------------------------------------------------------------------------

def _fam_override(ctx: _Ctx) -> Sample:
    text = ctx.pick("override_top")
    if ctx.p(0.12):  # a long pasted context with the override before or after it
        kind = _pick_kind(ctx)
        doc = _doc(ctx, kind, None, "end")
        task = ctx.pick("task_" + kind if "task_" + kind in ctx.g.slots else "task_generic")
        text = f"{task}\n\n{doc}\n\n{text}" if ctx.p(0.7) else f"{text}\n\n{doc}"
        return Sample(text, 1, "prompt_injection", "en", {"kind": kind})
    raw = ctx.p(0.2)
    return Sample(text if raw else vary(text, ctx.rng), 1, "prompt_injection")


def _jb_env(ctx: _Ctx) -> dict[str, str]:
    entry = ctx.rng.choice(ctx.g.slots["jb_persona"])
    name, _, gloss = entry.partition("=")
    gloss = gloss.strip()
    return {"jb_name": name.strip(), "jb_gloss_c": f", {gloss}" if gloss else ""}


def _jb_long(ctx: _Ctx, env: dict[str, str]) -> str:
    """A multi-paragraph persona set-up: intro and backstory, traits, rules, format, request."""
    r = ctx.rng
    paras = [ctx.x("{jb_open}", env) + " " + " ".join(_sample_slot(ctx, "jb_backstory", r.randint(1, 4), env))]
    traits = _sample_slot(ctx, "jb_trait", r.randint(3, 7), env)
    paras.append(" ".join(traits) if r.random() < 0.6 else "\n".join(traits))
    pool = ctx.g.slots["jb_rule_more"] + ctx.g.slots["jb_rule"] + ctx.g.slots["jb_refusal"]
    rules = [tidy(ctx.g.expand(e, r, env)) for e in r.sample(pool, r.randint(3, 8))]
    name = env["jb_name"]
    paras.append(_list_block(ctx, rules, ("Rules:", "Here are the rules:", f"{name}'s rules:",
                                          "You must follow these rules at all times:", "Guidelines:")))
    if r.random() < 0.5:
        paras.append(ctx.x("{jb_tokens}", env))
    if r.random() < 0.6:
        paras.append(ctx.x("{jb_format}", env))
    paras.append(ctx.x("{jb_close}", env))
    return "\n\n".join(paras)


def _fam_jailbreak(ctx: _Ctx) -> Sample:
    env = _jb_env(ctx)
    if ctx.p(0.45):
        return Sample(_jb_long(ctx, env), 1, "jailbreak", "en", {"long": True})
    text = ctx.x("{jailbreak_top}", env)
    if len(text) < 400:
        text = vary(text, ctx.rng)
    return Sample(text, 1, "jailbreak")


def _fam_leak(ctx: _Ctx) -> Sample:
    return Sample(vary(ctx.pick("leak_top"), ctx.rng), 1, "prompt_leak")


def _fam_indirect(ctx: _Ctx) -> Sample:
    kind = _pick_kind(ctx)
    payload = ctx.pick("ii_payload")
    if ctx.p(0.1):
        payload = vary(payload, ctx.rng, noisy=False)
    where = ctx.rng.choice(["start", "middle", "middle", "end", "end"])
    doc = _doc(ctx, kind, payload, where)
    lang = _lang_of(doc) if kind == "external" else "en"
    return Sample(_wrap_task(ctx, kind, doc), 1, "indirect_injection", lang,
                  {"kind": kind, "where": where, "payload": payload})


def _fam_task_injection(ctx: _Ctx) -> Sample:
    """An ordinary request planted inside a document: harmless words, but not the user's task.

    Content the model reads (documents, tool output) should carry no instructions for it; a
    planted task hijacks the assistant even when the task itself is benign (BIPIA's threat model).
    When the ``requests`` family is generated too, a request planted at the start of the document always
    gets the user's own task before it, since a request followed by content is the ordinary shape of a
    user's (benign) message.
    """
    r = ctx.rng
    request = ctx.pick("benign_top")
    while len(request) > 220:
        request = ctx.pick("benign_top")
    kind = _pick_kind(ctx)
    where = r.choice(["start", "start", "middle", "end"])
    doc = _doc(ctx, kind, vary(request, r, noisy=False), where)
    lang = _lang_of(doc) if kind == "external" else "en"
    wrapped = _wrap_task(ctx, kind, doc, always=ctx.with_requests and where == "start")
    return Sample(wrapped, 1, "indirect_injection", lang,
                  {"kind": kind, "where": where, "payload": request})


def _fam_exfil(ctx: _Ctx) -> Sample:
    r = ctx.rng.random()
    if r < 0.35:
        text = vary(ctx.pick("exfil_direct_top"), ctx.rng, noisy=False)
        return Sample(text, 1, "prompt_injection", "en", {"kind": "direct"})
    kind = "json" if r < 0.5 else _pick_kind(ctx, {"email": 3, "web": 2, "markdown": 2, "json": 2, "chat": 1.5})
    payload = ctx.pick("exfil_payload")
    where = ctx.rng.choice(["start", "middle", "end", "end"])
    doc = _doc(ctx, kind, payload, where)
    lang = _lang_of(doc) if kind == "external" else "en"
    return Sample(_wrap_task(ctx, kind, doc), 1, "indirect_injection", lang,
                  {"kind": kind, "where": where, "payload": payload})


_OBF_METHODS = ("base64", "hex", "rot13", "reverse", "reverse_words", "leet", "spaced", "zero_width",
                "tags", "homoglyph", "fullwidth", "url", "split", "mixed", "morse", "binary", "caesar")


def _encode(method: str, s: str, rng: random.Random) -> str:
    return {
        "base64": lambda: enc_base64(s), "hex": lambda: enc_hex(s, rng), "rot13": lambda: enc_rot13(s),
        "reverse": lambda: enc_reverse(s), "reverse_words": lambda: " ".join(reversed(s.split(" "))),
        "leet": lambda: enc_leet(s, rng), "spaced": lambda: enc_spaced(s, rng),
        "zero_width": lambda: enc_zero_width(s, rng), "tags": lambda: enc_tags(s),
        "homoglyph": lambda: enc_homoglyph(s, rng), "fullwidth": lambda: enc_fullwidth(s),
        "url": lambda: enc_url(s), "morse": lambda: enc_morse(s), "binary": lambda: enc_binary(s),
    }[method]()


def _fam_obfuscation(ctx: _Ctx) -> Sample:
    r = ctx.rng
    method = r.choice(_OBF_METHODS)
    lang = "en"
    if method == "mixed":
        langs = sorted(ctx.g.langs)
        la = r.choice(langs)
        t = ctx.g.langs[la]
        env: dict[str, str] = {}
        parts = [ctx.g.expand(r.choice(t["ovr"]), r, env), ctx.pick("obf_payload_tail")]
        if r.random() < 0.5:
            parts = [ctx.pick("obf_payload_head"), ctx.g.expand(r.choice(t[r.choice(["goal", "leak", "harm"])]),
                                                                 r, env)]
        text = " ".join(parts)
        if r.random() < 0.3:
            text = ctx.x("{obf_mixed_wrap}", {"enc": text})
        return Sample(text, 1, "obfuscation", la, {"method": "mixed", "payload": text})
    if r.random() < 0.12 and method in ("base64", "hex", "reverse", "url"):
        lang = r.choice(sorted(ctx.g.langs))
        payload, _ = _ml_attack(ctx, lang)
    else:
        payload = ctx.pick("obf_payload")
    if method == "split":
        pieces = split_payload(payload, r)
        env = {"enc": _ENC, "join": "\x00\x03\x04"}
        block = ctx.g.pick("obf_split_block", r, env)
        names = _split_names(r, len(pieces))
        quote = next((q for q in r.sample(["'", '"'], 2) if q not in payload), "`")
        sep = r.choice(["\n", "; ", ", ", "\n"])
        assign = sep.join(f"{n} = {quote}{p}{quote}" for n, p in zip(names, pieces, strict=True))
        joined = " + ".join(names)
        text = block.replace(_ENC, assign).replace("\x00\x03\x04", joined)
        return Sample(text, 1, "obfuscation", lang, {"method": "split", "payload": payload, "parts": pieces})
    shift = r.choice([1, 2, 3, 4, 5, 7, 10, 17, 23, 25])
    encoded = enc_caesar(payload, shift) if method == "caesar" else _encode(method, payload, r)
    wrap_p = {"leet": 0.35, "homoglyph": 0.2, "zero_width": 0.25, "fullwidth": 0.4, "spaced": 0.5,
              "tags": 0.0}.get(method, 0.75)
    if method == "tags":
        text = ctx.x("{obf_tag_carrier}", {"enc": _ENC})
    elif r.random() < wrap_p:
        slot = "obf_wrap_" + method if "obf_wrap_" + method in ctx.g.slots else "obf_wrap_generic"
        env = {"enc": _ENC, "method_name": ctx.pick("method_name_" + method)
               if "method_name_" + method in ctx.g.slots else method, "shift": str(shift)}
        text = vary(ctx.x("{" + slot + "}", env), r, noisy=False)
    elif method in ("base64", "hex", "rot13", "reverse", "reverse_words", "url", "morse", "binary", "caesar"):
        text = ctx.x("{obf_bare}", {"enc": _ENC})
    else:
        text = _ENC
    text = text.replace(_ENC, encoded)
    meta = {"method": method, "payload": payload, "encoded": encoded}
    if method == "caesar":
        meta["shift"] = shift
    return Sample(text, 1, "obfuscation", lang, meta)


def _split_names(rng: random.Random, k: int) -> list[str]:
    style = rng.randrange(4)
    if style == 0:
        return [chr(ord("a") + i) for i in range(k)]
    if style == 1:
        return [f"part{i + 1}" for i in range(k)]
    if style == 2:
        return [chr(ord("X") + i) if i < 3 else f"X{i}" for i in range(k)]
    return [f"s{i}" for i in range(k)]


def _fam_multilingual(ctx: _Ctx) -> Sample:
    lang = ctx.rng.choice(sorted(ctx.g.langs))
    text, cat = _ml_attack(ctx, lang)
    text = vary(text, ctx.rng, noisy=False)
    return Sample(text, 1, cat, lang)


# ---- benign families -------------------------------------------------------------------------

_REQ_FENCES = (("", ""), ("", ""), ('"""', '"""'), ("```", "```"), ("---", "---"), ('"', '"'))


def _fenced(r: random.Random, doc: str) -> str:
    """``doc`` as a user pastes it: bare, in quotes, or between fence lines (one draw from ``r``)."""
    open_, close = r.choice(_REQ_FENCES)
    return f"{open_}\n{doc}\n{close}" if open_ and open_ != '"' else f"{open_}{doc}{close}"


def _fam_requests(ctx: _Ctx) -> Sample:
    """A user's own detailed request about content they pasted (``requests.yaml``): benign.

    The request comes before the content (most often), after it, or both; the content is a
    built-in carrier document (email, review, code, README, ticket, chat, table, JSON...; never a
    caller's carrier, which is a training row already) or one of ``req_doc``'s recipes, clauses,
    notes, logs and letters.
    """
    r = ctx.rng
    if r.random() < 0.25:
        kind, doc = "generic", ctx.x("{req_doc}")
    else:
        kind = _pick_kind(ctx, {"csv": 0.5, "search": 0.5, "pdf": 0.7, "qa": 0.5}, external=False)
        doc = _doc(ctx, kind, None, r.choice(["start", "middle", "end"]))
    slot = "req_ask_" + kind
    slot = slot if slot in ctx.g.slots and r.random() < 0.7 else "req_ask_generic"
    ask = ctx.pick("req_ask_ml") if r.random() < 0.1 else ctx.pick(slot)
    if r.random() < 0.35:
        ask = ctx.pick("req_lead") + " " + ask
    if r.random() < 0.3:
        ask = ask + " " + ctx.pick("req_constraint")
    body = _fenced(r, doc)
    u = r.random()
    if u < 0.7:
        text = f"{ask}\n\n{body}" if r.random() < 0.8 else f"{ask} {body}"
    elif u < 0.9:
        text = f"{body}\n\n{ctx.pick('req_after')}"
    else:
        text = f"{ask}\n\n{body}\n\n{ctx.pick('req_after')}"
    return Sample(text, 0, "benign", "en", {"kind": kind})


_RQML_LANGS = ("de", "fr", "es", "it", "pt", "nl", "tr", "ja", "zh", "ru", "pl")


def _fam_requests_ml(ctx: _Ctx) -> Sample:
    """A request about a pasted text in another language (``requests_ml.yaml``): benign.

    The ask is in the text's language (three times in four) or in English ("translate this"); it comes
    before the text, or after it.
    """
    r = ctx.rng
    lang = r.choice(_RQML_LANGS)
    doc = ctx.pick(f"rqml_doc_{lang}")
    ask = ctx.pick("rqml_ask_en") if r.random() < 0.25 else ctx.pick(f"rqml_ask_{lang}")
    body = _fenced(r, doc)
    text = f"{ask}\n\n{body}" if r.random() < 0.85 else f"{body}\n\n{ask}"
    return Sample(text, 0, "benign", lang, {"kind": "pasted_ml"})


def _fam_meta_questions(ctx: _Ctx) -> Sample:
    """A user's question about the assistant itself (``meta.yaml``): benign_hard.

    Capabilities, training, memory, refusals, data handling; one in seven in another language.
    """
    r = ctx.rng
    if r.random() < 0.15:
        text = ctx.pick("mq_ml")
        return Sample(text, 0, "benign_hard", _lang_of(text), {"kind": "meta_ml"})
    open_, body, close = ctx.pick("mq_open"), ctx.pick("mq_body"), ctx.pick("mq_close")
    body = (body[:1].lower() if open_ and not open_.endswith((":", ".", "!")) else body[:1].upper()) + body[1:]
    text = " ".join(part for part in (open_, body, close) if part)
    return Sample(text, 0, "benign_hard", "en", {"kind": "meta"})


_MIXED_KINDS = ("email", "news", "review", "ticket", "pdf", "markdown", "calendar", "resume", "chat")


def _fam_mixed_docs(ctx: _Ctx) -> Sample:
    """Several unrelated benign documents pasted one after another, sometimes with the user's request: benign.

    A topic shift alone is not an injection: newsletters, digests, forwarded threads and notes jump
    between subjects. (Injected documents are the ``indirect`` and ``task_injection`` families: there
    the inserted part addresses the assistant or plants a task; here no part does.)
    """
    r = ctx.rng
    kinds = r.sample(_MIXED_KINDS, r.randint(2, 4))
    parts = []
    for kind in kinds:
        blocks = [b for b in _doc(ctx, kind, None, "middle").split("\n\n") if b.strip()]
        k = r.randint(1, min(3, len(blocks)))
        s0 = r.randint(0, len(blocks) - k)
        parts.append("\n\n".join(blocks[s0:s0 + k]))
    text = "\n\n".join(parts)
    u = r.random()
    if u < 0.45:
        text = f"{ctx.pick('req_ask_generic')}\n\n{text}"
    elif u < 0.6:
        text = f"{ctx.pick('task_generic')}\n\n{text}"
    elif u < 0.7:
        text = f"{text}\n\n{ctx.pick('req_after')}"
    return Sample(text, 0, "benign_hard", "en", {"kinds": kinds})


def _fam_benign(ctx: _Ctx) -> Sample:
    text = ctx.pick("benign_top")
    if len(text) < 400:
        text = vary(text, ctx.rng)
    return Sample(text, 0, "benign")


def _fam_benign_ml(ctx: _Ctx) -> Sample:
    lang = ctx.rng.choice(sorted(ctx.g.langs))
    t = ctx.g.langs[lang]
    r = ctx.rng
    if r.random() < 0.35:
        text, cat = r.choice(t["hard"]), "benign_hard"
    else:
        text, cat = r.choice(t["benign"]), "benign"
    if r.random() < 0.4:
        text = _greet_join(r.choice(t["greet"]), text, lang)
    if r.random() < 0.15:
        text = f"{text} {r.choice(t['benign'])}"
    return Sample(vary(tidy(ctx.g.expand(text, r)), r, noisy=False), 0, cat, lang)


def _fam_hard_trigger(ctx: _Ctx) -> Sample:
    text = ctx.pick("hard_trigger_top")
    return Sample(vary(text, ctx.rng) if len(text) < 400 else text, 0, "benign_hard")


def _fam_hard_code(ctx: _Ctx) -> Sample:
    raw = ctx.g.pick("hard_code_top", ctx.rng)
    text = raw.strip() if "\n" in raw.strip() and ("    " in raw or "```" in raw) else tidy(raw)
    return Sample(text, 0, "benign_hard")


def _fam_hard_docs(ctx: _Ctx) -> Sample:
    if ctx.p(0.25):
        return Sample(ctx.pick("hard_docs_top"), 0, "benign_hard")
    kind = _pick_kind(ctx, external=False)  # caller carriers are train rows already: don't copy them
    where = ctx.rng.choice(["start", "middle", "end"])
    doc = _doc(ctx, kind, None, where)
    lang = _lang_of(doc) if kind == "external" else "en"
    return Sample(_wrap_task(ctx, kind, doc), 0, "benign_hard", lang, {"kind": kind})


def _rp_long(ctx: _Ctx) -> str:
    """A long benign persona / system-prompt style set-up with rules (the twin of ``_jb_long``)."""
    r, env = ctx.rng, {}
    if r.random() < 0.45:  # "Act as a <title>. You are ... Your task is ... You will: ..."
        paras = [ctx.x("{rp_expert_open}", env) + "\n\n" + ctx.x("{rp_task2}", env)]
        wills = _sample_slot(ctx, "rp_will", r.randint(3, 6), env)
        paras.append("You will:\n" + "\n".join(f"- {w}" for w in wills))
        if r.random() < 0.5:
            guides = _sample_slot(ctx, "rp_guideline", r.randint(2, 5), env)
            paras.append(_list_block(ctx, guides, ("Constraints:", "Rules:", "Guidelines:")))
    else:
        paras = [ctx.x("{rp_long_open}", env) + " "
                 + " ".join(_sample_slot(ctx, "rp_desc", r.randint(1, 3), env))]
        guides = _sample_slot(ctx, "rp_guideline", r.randint(3, 8), env)
        paras.append(_list_block(ctx, guides, ("Guidelines:", "Rules:", "Please follow these rules:",
                                               "Instructions:")))
    if r.random() < 0.5:
        paras.append(ctx.x("{rp_long_format}", env))
    paras.append(ctx.x("{rp_first_request}", env))
    return "\n\n".join(paras)


def _fam_hard_roleplay(ctx: _Ctx) -> Sample:
    if ctx.p(0.3):
        return Sample(_rp_long(ctx), 0, "benign_hard", "en", {"long": True})
    text = ctx.pick("hard_roleplay_top")
    return Sample(vary(text, ctx.rng) if len(text) < 400 else text, 0, "benign_hard")


def _fam_hard_sysprompt(ctx: _Ctx) -> Sample:
    if ctx.p(0.3):
        return Sample(_rp_long(ctx), 0, "benign_hard", "en", {"long": True})
    return Sample(ctx.pick("sysprompt_top"), 0, "benign_hard")


_ST_SLOTS = ("st_story", "st_prompting", "st_notice", "st_followup")


def _fam_short_turns(ctx: _Ctx) -> Sample:
    """A short mid-conversation turn with an attack-like surface (``turns.yaml``): benign.

    Continue a story as a character, write the instructions of one's own bot, ask about a
    notification, or ask for another version of the last answer.
    """
    slot = ctx.rng.choice(_ST_SLOTS)
    text = ctx.pick(slot)
    return Sample(vary(text, ctx.rng), 0, "benign_hard", "en", {"kind": slot})


# ---- attack styles (``styles.yaml``; opt-in families ``styles`` and ``styles_benign``) ------------

#: Style -> ((attack slot, category), ...): one slot is drawn per row, weighted by its entry count.
#: ``split_payload``, ``multilingual_other`` and the document-borne styles are assembled in code.
_STYLE_SLOTS: dict[str, tuple[tuple[str, str], ...]] = {
    "secret_game": (("sty_secret_game", "prompt_leak"),),
    "say_phrase": (("sty_say_phrase", "prompt_injection"),),
    "refusal_suppression": (("sty_refusal_suppression", "jailbreak"),),
    "prefix_injection": (("sty_prefix_injection", "jailbreak"),),
    "policy_puppetry": (("sty_policy_puppetry", "jailbreak"),),
    "behaviour_update": (("sty_behaviour_update", "jailbreak"),),
    "emotional": (("sty_emotional", "jailbreak"), ("sty_emotional_secret", "prompt_leak")),
    "virtualisation": (("sty_virtualisation", "jailbreak"),),
    "authority": (("sty_authority", "prompt_injection"),),
    "fake_dialogue": (("sty_fake_dialogue", "prompt_injection"),),
    "code_smuggling": (("sty_code_smuggling", "prompt_injection"),),
    "split_payload": (),
    "web_indirect": (("sty_web_indirect", "indirect_injection"),),
    "exfil_markdown": (("sty_exfil_markdown", "prompt_injection"),),
    "agent_tool": (("sty_agent_tool", "prompt_injection"),),
    "leak_format": (("sty_leak_format", "prompt_leak"),),
    "fiction_harm": (("sty_fiction_harm", "jailbreak"),),
    "multilingual_other": (),
    "context_reset": (("sty_context_reset", "prompt_injection"),),
    "persona_jailbreak": (("sty_persona_jailbreak", "jailbreak"),),
}
STYLES: tuple[str, ...] = tuple(_STYLE_SLOTS)
#: Document-borne styles: (probability of a carrier document, document kinds and weights). The payload slot is
#: ``sty_<style>_payload`` (attack, indirect_injection) or ``styb_<style>_ins`` (benign line, same hiding places).
_STYLE_DOCS: dict[str, tuple[float, dict[str, float]]] = {
    "web_indirect": (0.7, {"web": 3, "email": 2, "review": 2, "pdf": 1.5, "calendar": 1.5, "search": 1.5,
                           "news": 1, "json": 1, "markdown": 1}),
    "exfil_markdown": (0.55, {"email": 2, "web": 2, "markdown": 2, "json": 1.5, "chat": 1, "ticket": 1, "qa": 1}),
    "agent_tool": (0.6, {"json": 3, "email": 2, "ticket": 2, "markdown": 1.5, "code_py": 1.5, "code_js": 1,
                         "chat": 1, "calendar": 1}),
}
#: Styles whose skeletons are code or config: expanded without :func:`tidy` (which would capitalise ``key: value``).
_STYLE_RAW = frozenset({"policy_puppetry", "code_smuggling"})
#: Languages of ``multilingual_other`` (``sml_<lang>_ovr`` / ``sml_<lang>_leak`` / ``smlb_<lang>``): the ones the
#: ``multilingual`` family lacks, plus mixed-language and secret-extraction lines in four it has.
STYLE_LANGS: tuple[str, ...] = ("sv", "bn", "uk", "el", "cs", "ro", "sw", "he", "fa", "pl", "nl", "vi", "id")


def _style_text(ctx: _Ctx, style: str, slot: str, env: dict[str, str] | None = None) -> str:
    """Expand ``slot``: raw for code/config styles, tidied otherwise; short one-liners get :func:`vary`."""
    if style in _STYLE_RAW:
        return ctx.g.pick(slot, ctx.rng, env).strip()
    text = ctx.pick(slot, env)
    if len(text) < 300 and "\n" not in text:
        text = vary(text, ctx.rng, noisy=ctx.p(0.5))
    return text


def _sp_assign(r: random.Random, parts: list[str]) -> tuple[str, str]:
    """Render word fragments as assignments (Python, JS, shell, JSON list, numbered parts); return (block, join)."""
    names = _split_names(r, len(parts))
    style = r.randrange(5)
    if style == 0:
        q = "'" if not any("'" in p for p in parts) else '"'
        return "\n".join(f"{n} = {q}{p}{q}" for n, p in zip(names, parts, strict=True)), " + ' ' + ".join(names)
    if style == 1:
        js = "; ".join(f"const {n} = {json.dumps(p)}" for n, p in zip(names, parts, strict=True))
        return js, "[" + ", ".join(names) + "].join(' ')"
    if style == 2:
        up = [n.upper() for n in names]
        return "\n".join(f"{n}={json.dumps(p)}" for n, p in zip(up, parts, strict=True)), \
            '"' + " ".join(f"${{{n}}}" for n in up) + '"'
    if style == 3:
        return "parts = " + json.dumps(parts, ensure_ascii=False), "' '.join(parts)"
    return "\n".join(f"Part {i}: {p}" for i, p in enumerate(parts, 1)), \
        " + ".join(f"part {i}" for i in range(1, len(parts) + 1))


def _sp_build(ctx: _Ctx, payload_slot: str, block_slot: str) -> tuple[str, str, list[str]]:
    """A sentence cut at word boundaries into 2-5 fragments, shown as variables inside a ``block_slot`` frame."""
    r = ctx.rng
    payload = ctx.g.pick(payload_slot, r).strip().rstrip(".")
    words = payload.split(" ")
    k = min(r.randint(2, 5), len(words))
    cuts = sorted(r.sample(range(1, len(words)), k - 1)) if k > 1 else []
    bounds = [0, *cuts, len(words)]
    parts = [" ".join(words[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
    assign, joined = _sp_assign(r, parts)
    frame = ctx.g.pick(block_slot, r, {"enc": _ENC, "join": "\x00\x03\x04"})
    return frame.replace(_ENC, assign).replace("\x00\x03\x04", joined).strip(), payload, parts


def _style_kind(ctx: _Ctx, style: str, external: bool) -> str:
    """A carrier kind for a document-borne style; a caller's carriers (attacks only) get a third of the draws."""
    weights = dict(_STYLE_DOCS[style][1])
    if external and ctx.carriers:
        weights["external"] = sum(weights.values()) * 0.5
    return ctx.rng.choices(list(weights), weights=list(weights.values()))[0]


def _fam_styles(ctx: _Ctx) -> Sample:
    """One attack in one of :data:`STYLES` (``styles.yaml``); ``meta['style']`` names it.

    Document-borne styles hide their payload in a carrier document most of the time (indirect_injection);
    ``split_payload`` cuts an attack sentence into variables to be joined (obfuscation); ``multilingual_other``
    writes override and extraction lines in languages the ``multilingual`` family lacks.
    """
    r = ctx.rng
    style = r.choice(STYLES)
    meta: dict[str, Any] = {"style": style}
    if style == "split_payload":
        text, payload, parts = _sp_build(ctx, "sp_payload", "sp_block")
        return Sample(text, 1, "obfuscation", "en", {**meta, "payload": payload, "parts": parts})
    if style == "multilingual_other":
        lang = r.choice(STYLE_LANGS)
        kind = r.choices(("ovr", "leak"), weights=(len(ctx.g.slots[f"sml_{lang}_ovr"]),
                                                   len(ctx.g.slots[f"sml_{lang}_leak"])))[0]
        text = vary(ctx.pick(f"sml_{lang}_{kind}"), r, noisy=False)
        return Sample(text, 1, "prompt_injection" if kind == "ovr" else "prompt_leak", lang, meta)
    if style in _STYLE_DOCS and ctx.p(_STYLE_DOCS[style][0]):
        kind = _style_kind(ctx, style, external=True)
        payload = ctx.pick(f"sty_{style}_payload")
        where = r.choice(["start", "middle", "middle", "end"])
        doc = _doc(ctx, kind, payload, where)
        lang = _lang_of(doc) if kind == "external" else "en"
        return Sample(_wrap_task(ctx, kind, doc), 1, "indirect_injection", lang,
                      {**meta, "kind": kind, "where": where, "payload": payload})
    options = _STYLE_SLOTS[style]
    slot, cat = r.choices(options, weights=[len(ctx.g.slots[s]) for s, _ in options])[0]
    return Sample(_style_text(ctx, style, slot, {}), 1, cat, "en", {**meta, "slot": slot})


def _fam_styles_benign(ctx: _Ctx) -> Sample:
    """A harmless near-miss of one of :data:`STYLES` (``styb_*`` in ``styles.yaml``): benign_hard.

    Password-recovery questions, configs pasted with a question, real admin questions, transcripts to
    summarise, crime-novel requests that need no real instructions, documents that mention AI or carry a
    harmless note in the places attacks hide theirs, ordinary requests in the same languages.
    """
    r = ctx.rng
    style = r.choice(STYLES)
    meta: dict[str, Any] = {"style": style}
    if style == "split_payload" and ctx.p(0.7):
        text, payload, parts = _sp_build(ctx, "spb_payload", "spb_block")
        return Sample(text, 0, "benign_hard", "en", {**meta, "payload": payload, "parts": parts})
    if style == "multilingual_other":
        lang = r.choice(STYLE_LANGS)
        return Sample(vary(ctx.pick(f"smlb_{lang}"), r, noisy=False), 0, "benign_hard", lang, meta)
    if style in _STYLE_DOCS and ctx.p(0.5):
        kind = _style_kind(ctx, style, external=False)
        line = ctx.pick(f"styb_{style}_ins")
        where = r.choice(["start", "middle", "middle", "end"])
        doc = _doc(ctx, kind, line, where)
        return Sample(_wrap_task(ctx, kind, doc), 0, "benign_hard", "en",
                      {**meta, "kind": kind, "where": where, "payload": line})
    return Sample(_style_text(ctx, style, f"styb_{style}", {}), 0, "benign_hard", "en", meta)


@dataclass(frozen=True)
class Family:
    """A named row generator with its default row count."""

    name: str
    default_n: int
    build: Callable[[_Ctx], Sample]
    attack: bool


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("override", 550, _fam_override, True),
        Family("jailbreak", 500, _fam_jailbreak, True),
        Family("leak", 450, _fam_leak, True),
        Family("indirect", 550, _fam_indirect, True),
        Family("exfil", 450, _fam_exfil, True),
        Family("obfuscation", 550, _fam_obfuscation, True),
        Family("multilingual", 500, _fam_multilingual, True),
        Family("benign", 1000, _fam_benign, False),
        Family("benign_ml", 650, _fam_benign_ml, False),
        Family("hard_trigger", 850, _fam_hard_trigger, False),
        Family("hard_code", 450, _fam_hard_code, False),
        Family("hard_docs", 950, _fam_hard_docs, False),
        Family("hard_roleplay", 550, _fam_hard_roleplay, False),
        Family("hard_sysprompt", 350, _fam_hard_sysprompt, False),
        Family("task_injection", 400, _fam_task_injection, True),
        Family("requests", 900, _fam_requests, False),
        Family("mixed_docs", 700, _fam_mixed_docs, False),
        Family("short_turns", 700, _fam_short_turns, False),
        Family("requests_ml", 450, _fam_requests_ml, False),
        Family("meta_questions", 500, _fam_meta_questions, False),
        Family("styles", 700, _fam_styles, True),
        Family("styles_benign", 700, _fam_styles_benign, False),
    )
}
#: What ``generate`` makes by default: the families the shipped linear model was trained on (``aimds train``).
#: ``mixed_docs`` is opt-in (``aimds train --families +mixed_docs``): measured, it cost dev TPR for little gain.
#: ``styles`` / ``styles_benign`` (attack styles the shared data is light on, and their near-misses) are opt-in too.
_OPT_IN: tuple[str, ...] = ("mixed_docs", "short_turns", "requests_ml", "meta_questions", "styles", "styles_benign")
DEFAULT_FAMILIES: tuple[str, ...] = tuple(name for name in FAMILIES if name not in _OPT_IN)
#: The shipped encoder's (``enc-minilm-l6-mil-v3``) training set (``scripts/train_encoder.py prepare --families v3``,
#: the default there): the default families plus ``short_turns`` — an encoder retrained without it (v2, not shipped)
#: blocked short benign chat turns that v1 let through.
ENCODER_V3_FAMILIES: tuple[str, ...] = (*DEFAULT_FAMILIES, "short_turns")
#: The encoder's next training set (``prepare --families next``): v3's plus ``requests_ml`` and ``meta_questions``
#: — v3 still flags requests about pasted non-English text and questions about the assistant itself.
ENCODER_NEXT_FAMILIES: tuple[str, ...] = (*ENCODER_V3_FAMILIES, "requests_ml", "meta_questions")
#: The families the previous encoder (``enc-minilm-l6-mil-v1``) was trained on, before ``requests`` existed
#: (``prepare --families v1`` reproduces its data).
ENCODER_V1_FAMILIES: tuple[str, ...] = tuple(name for name in FAMILIES if name != "requests" and name not in _OPT_IN)
#: A candidate encoder training set (``prepare --families styles``): v3's plus the attack-style families.
ENCODER_STYLES_FAMILIES: tuple[str, ...] = (*ENCODER_V3_FAMILIES, "styles", "styles_benign")


def _key(text: str) -> str:
    """Dedupe key: NFKC, casefolded, whitespace collapsed, digits folded (numbers alone don't count)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join("".join("0" if c.isdigit() else c for c in folded).split())


def generate_samples(seed: int = 13, n_per_family: int | None = None,
                     carriers: Sequence[str] | None = None,
                     families: Iterable[str] | None = None) -> dict[str, list[Sample]]:
    """Generate samples per family (with ``meta``); see :func:`generate`."""
    g = load_grammar()
    pool = [c for c in (carriers or []) if isinstance(c, str) and len(c.strip()) >= 40]
    seen: dict[str, int] = {}
    out: dict[str, list[Sample]] = {}
    chosen = tuple(families or DEFAULT_FAMILIES)
    unknown = sorted(set(chosen) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown augmentation families: {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
    for name in chosen:
        fam = FAMILIES[name]
        n = fam.default_n if n_per_family is None else n_per_family
        ctx = _Ctx(g, random.Random(f"aimds-augment:{seed}:{name}"), pool, with_requests="requests" in chosen)
        rows: list[Sample] = []
        tries = 0
        while len(rows) < n and tries < n * 40:
            tries += 1
            s = fam.build(ctx)
            s.text = s.text.strip()
            if len(s.text) < 8:
                continue
            k = _key(s.text)
            if k in seen:
                continue
            seen[k] = s.label
            s.meta["family"] = name
            rows.append(s)
        out[name] = rows
    return out


def generate(seed: int = 13, n_per_family: int | None = None,
             carriers: Sequence[str] | None = None,
             families: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Return labelled synthetic rows ``{text, label, category, source, lang}``, deterministic per seed.

    ``n_per_family`` overrides each family's default count; ``carriers`` are benign documents
    (e.g. label-0 training texts) used, besides the built-in ones, as hosts for indirect injections;
    ``families`` picks the generators (default :data:`DEFAULT_FAMILIES`).
    """
    rows = []
    for name, samples in generate_samples(seed, n_per_family, carriers, families).items():
        rows += [{"text": s.text, "label": s.label, "category": s.category, "source": f"synth:{name}",
                  "lang": s.lang} for s in samples]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated rows as JSONL and print per-family counts."""
    ap = argparse.ArgumentParser(prog="python -m aimds.train.augment", description=main.__doc__)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n", type=int, default=None, help="rows per family (default: per-family sizes)")
    ap.add_argument("--carriers", help="JSONL file whose label-0 texts host indirect injections")
    ap.add_argument("--out", required=True, help="output JSONL path")
    args = ap.parse_args(argv)
    carriers = None
    if args.carriers:
        with open(args.carriers, encoding="utf-8") as fh:
            carriers = [r["text"] for r in map(json.loads, fh) if r.get("label") == 0]
    rows = generate(args.seed, args.n, carriers)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fam = Counter(r["source"] for r in rows)
    cat = Counter(r["category"] for r in rows)
    lab = Counter(r["label"] for r in rows)
    for name, n in fam.items():
        print(f"{name:24s} {n:6d}")
    print("-" * 31)
    for name, n in sorted(cat.items()):
        print(f"{name:24s} {n:6d}")
    print(f"{'total':24s} {len(rows):6d}   attack {lab[1]}  benign {lab[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
