"""Reversible redaction: entities become placeholders (``<EMAIL_1>``), a vault maps them back.

An app redacts a prompt before sending it to an external LLM and restores the real values in
the answer. Guarantees:

- **Exact round trip**: ``restore(redact(x, ents, vault).text, vault) == x`` for any ``x`` and
  any entity list (overlapping, out-of-range or empty spans included).
- **Stable placeholders**: within one vault scope the same value always gets the same
  placeholder, across calls.
- **No collisions**: text in the input that already looks like a placeholder (``<EMAIL_1>``,
  ``<email_1>``) is itself swapped for a fresh ``<LITERAL_n>`` placeholder, so a placeholder in
  redacted text always means a vault entry and restoring never invents values.
- **Tolerant restore**: placeholders are matched case-insensitively (models sometimes write
  ``<Email_1>``); a placeholder the scope does not know is left as it is.

Placeholder names are ``<TYPE_n>`` with ``TYPE`` the entity type upper-cased (``CREDIT_CARD``,
``AWS_ACCESS_KEY``) and ``n`` counting from 1 per type and scope.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import re2

from aimds.detect.entities import Entity, char_offsets

#: What a placeholder looks like (also used to find look-alikes in the input).
PLACEHOLDER = re2.compile(r"<([A-Za-z][A-Za-z0-9_]*)_([0-9]{1,9})>")
LITERAL = "LITERAL"
DEFAULT_TTL_S = 3600.0


class Vault(Protocol):
    """Per-scope storage of ``placeholder → original value`` with a time to live."""

    def get(self, scope: str) -> dict[str, str]:
        """The mapping of ``scope`` (empty when unknown or expired)."""
        ...

    def put(self, scope: str, mapping: Mapping[str, str], ttl_s: float = DEFAULT_TTL_S) -> None:
        """Replace the mapping of ``scope`` and reset its expiry to ``ttl_s`` from now."""
        ...


class MemoryVault:
    """An in-process :class:`Vault`: a thread-safe LRU of at most ``max_scopes`` scopes, each with a TTL."""

    def __init__(self, max_scopes: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_scopes
        self._clock = clock

    def get(self, scope: str) -> dict[str, str]:
        """The mapping of ``scope`` (a copy), or ``{}`` when unknown or expired."""
        with self._lock:
            item = self._data.get(scope)
            if item is None:
                return {}
            expiry, mapping = item
            if expiry <= self._clock():
                del self._data[scope]
                return {}
            self._data.move_to_end(scope)
            return dict(mapping)

    def put(self, scope: str, mapping: Mapping[str, str], ttl_s: float = DEFAULT_TTL_S) -> None:
        """Store ``mapping`` for ``scope``, evicting the least recently used scope when full."""
        with self._lock:
            self._data[scope] = (self._clock() + ttl_s, dict(mapping))
            self._data.move_to_end(scope)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted text, the scope that can restore it, and what was replaced."""

    text: str
    scope: str
    #: Placeholders introduced or reused by this call, in order of appearance.
    placeholders: tuple[str, ...] = ()
    #: Entity types replaced, by placeholder (``{"<EMAIL_1>": "email"}``; literals are ``literal``).
    types: Mapping[str, str] = field(default_factory=dict)


def _spans(text: str, entities: Iterable[Entity]) -> list[tuple[int, int, str]]:
    """Entity spans plus placeholder look-alikes, clipped to the text, overlaps merged."""
    n = len(text)
    raw: list[tuple[int, int, str]] = []
    for ent in entities:
        s, e = max(0, min(ent.start, n)), max(0, min(ent.end, n))
        if e > s:
            raw.append((s, e, ent.type))
    if "<" in text:
        raw += _lookalikes(text)
    raw.sort()
    merged: list[tuple[int, int, str]] = []
    for s, e, typ in raw:
        if merged and s < merged[-1][1]:
            ps, pe, ptyp = merged[-1]
            # A merged span keeps the real entity type over the literal one.
            merged[-1] = (ps, max(pe, e), ptyp if ptyp != LITERAL.lower() else typ)
        else:
            merged.append((s, e, typ))
    return merged


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _lookalikes(text: str) -> list[tuple[int, int, str]]:
    """Spans of text that already looks like a placeholder (matched on UTF-8 bytes: lone surrogates are fine)."""
    data = _utf8(text)
    spans = [m.span() for m in PLACEHOLDER.finditer(data)]
    if spans and len(data) != len(text):
        to_char = char_offsets(data, [x for s in spans for x in s])
        spans = [(to_char[s], to_char[e]) for s, e in spans]
    return [(s, e, LITERAL.lower()) for s, e in spans]


def _type_name(entity_type: str) -> str:
    name = "".join(c if c.isascii() and c.isalnum() else "_" for c in entity_type.upper()).strip("_")
    return name if name and name[0].isalpha() else f"X{name}"


def redact(text: str, entities: Iterable[Entity], vault: Vault, scope: str | None = None,
           ttl_s: float = DEFAULT_TTL_S) -> Redaction:
    """Replace each entity of ``text`` with a placeholder and record it in ``vault`` under ``scope``.

    ``scope`` defaults to a new random id (returned in the result); pass the same scope for every
    turn of a conversation so that a value keeps its placeholder.
    """
    scope = scope or uuid.uuid4().hex
    mapping = vault.get(scope)
    by_value = {(v, _kind(k)): k for k, v in mapping.items()}
    used: dict[str, int] = {}
    for key in mapping:
        kind = _kind(key)
        used[kind] = max(used.get(kind, 0), _number(key))
    parts: list[str] = []
    placeholders: list[str] = []
    types: dict[str, str] = {}
    pos = 0
    for s, e, typ in _spans(text, entities):
        value = text[s:e]
        kind = _type_name(typ)
        key = by_value.get((value, kind))
        if key is None:
            used[kind] = used.get(kind, 0) + 1
            key = f"<{kind}_{used[kind]}>"
            mapping[key] = value
            by_value[(value, kind)] = key
        parts += [text[pos:s], key]
        placeholders.append(key)
        types[key] = typ
        pos = e
    parts.append(text[pos:])
    if placeholders:
        vault.put(scope, mapping, ttl_s)
    return Redaction("".join(parts), scope, tuple(placeholders), types)


def _kind(placeholder: str) -> str:
    return placeholder[1:placeholder.rindex("_")]


def _number(placeholder: str) -> int:
    return int(placeholder[placeholder.rindex("_") + 1:-1])


def restore(text: str, vault: Vault, scope: str) -> str:
    """Put the vault's values back in place of the placeholders in ``text`` (case-insensitive)."""
    if "<" not in text:
        return text
    mapping = vault.get(scope)
    if not mapping:
        return text
    folded = {_utf8(k.upper()): _utf8(v) for k, v in mapping.items()}
    out = PLACEHOLDER.sub(lambda m: folded.get(m.group(0).upper(), m.group(0)), _utf8(text))
    return out.decode("utf-8", "surrogatepass")
