"""Canary tokens: self-authenticating markers to embed in a system prompt.

A token reads ``cnry-<id>-<tag>``:

- ``id`` is 12 characters of lowercase base32 (``a-z2-7``): 11 random characters (55 bits) and one
  check character, so a token can be told from noise without any key (1 in 32 chance for noise);
- ``tag`` is 10 base32 characters (50 bits) of HMAC-SHA256 over the id under the deployment key,
  so any text can be checked with the key alone: no lookup table, no state.

The alphabet is lowercase letters and the digits 2-7, so the pipeline's case folding leaves a token
unchanged and an upper-cased leak (``CNRY-…``) is the same token in the folded view. :func:`find`
looks in the folded view and every decoded view (base64, hex, URL escapes… decoded by the
normaliser), and in each of them also for the rot13 form (``pael-…``) and the reversed form
(``…-yrnc``). With a key, separators between the characters may be changed, dropped or padded
(``c n r y - …``, up to three non-alphanumeric characters between two token characters) because the
HMAC rules out chance matches; without a key only the exact ``cnry-…-…`` shape with a valid check
character counts (:attr:`CanaryHit.verified` is then false). All matching is RE2, linear time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import re2

from aimds.errors import ConfigError
from aimds.normalize import Views, normalize
from aimds.types import Span

PREFIX = "cnry"
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
ID_LEN = 12
TAG_LEN = 10
#: Length of a canonical token, ``cnry-`` + id + ``-`` + tag.
TOKEN_LEN = len(PREFIX) + 1 + ID_LEN + 1 + TAG_LEN
#: Longest stretch of text a tolerant (keyed) match may cover: every gap holds up to 3 separators.
MAX_MATCH_LEN = (len(PREFIX) + ID_LEN + TAG_LEN) * 4
MIN_KEY_BYTES = 16
_DOMAIN = b"aimds-canary-v1|"
_SEP = "[^a-z0-9]{0,3}"
_ROT13 = str.maketrans("abcdefghijklmnopqrstuvwxyz", "nopqrstuvwxyzabcdefghijklm")


@dataclass(frozen=True, slots=True)
class Canary:
    """An issued canary: ``id`` names it (store it with the prompt it protects), ``token`` goes in the prompt."""

    id: str
    token: str


@dataclass(frozen=True, slots=True)
class CanaryHit:
    """A canary token found in a text.

    ``span`` points into the original text (for a decoded view: the whole encoded run);
    ``verified`` is true when its HMAC tag checked out under the key, false for a keyless match on
    shape and check character only; ``form`` is ``plain``, ``rot13`` or ``reversed``; ``view`` names
    the normalised view it was seen in (``folded``, ``decoded:base64``…).
    """

    id: str
    span: Span
    verified: bool
    form: str
    view: str


def new_key() -> bytes:
    """A fresh random 32-byte deployment key."""
    return os.urandom(32)


def load_key(path: str | Path) -> bytes:
    """Read a key file: hex (64 hex digits, as written by :func:`new_key` ``.hex()``) or raw bytes."""
    raw = Path(path).read_bytes()
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    return _check_key(key)


def _check_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"a canary key needs at least {MIN_KEY_BYTES} bytes")
    return bytes(key)


def _b32(data: bytes, n: int) -> str:
    return base64.b32encode(data).decode("ascii").lower()[:n]


def _check_char(body: str) -> str:
    return ALPHABET[zlib.crc32(body.encode("ascii")) % 32]


def _tag(key: bytes, cid: str) -> str:
    return _b32(hmac.new(key, _DOMAIN + cid.encode("ascii"), hashlib.sha256).digest(), TAG_LEN)


def issue(key: bytes, random_part: bytes | None = None) -> Canary:
    """Issue a new canary under ``key``; ``random_part`` (≥ 7 bytes) makes it deterministic, for tests and data."""
    key = _check_key(key)
    rnd = random_part if random_part is not None else os.urandom(7)
    if len(rnd) < 7:
        raise ValueError("random_part needs at least 7 bytes")
    body = _b32(rnd, ID_LEN - 1)
    cid = body + _check_char(body)
    return Canary(cid, f"{PREFIX}-{cid}-{_tag(key, cid)}")


def well_formed(cid: str) -> bool:
    """Whether ``cid`` has the shape and check character of an issued id (no key needed)."""
    return (len(cid) == ID_LEN and all(c in ALPHABET for c in cid)
            and _check_char(cid[:-1]) == cid[-1])


def verify(token: str, key: bytes | None) -> bool:
    """Whether ``token`` (canonical form, any case) is a canary issued under ``key`` (shape only when None)."""
    t = token.strip().lower()
    if len(t) != TOKEN_LEN or not t.startswith(PREFIX + "-") or t[len(PREFIX) + 1 + ID_LEN] != "-":
        return False
    cid, tag = t[len(PREFIX) + 1: len(PREFIX) + 1 + ID_LEN], t[-TAG_LEN:]
    if not well_formed(cid) or any(c not in ALPHABET for c in tag):
        return False
    return key is None or hmac.compare_digest(tag, _tag(key, cid))


@cache
def _patterns() -> tuple[tuple[str, re2._Regexp], ...]:
    """Tolerant patterns for the plain, rot13 and reversed forms (alphanumerics of the token, any separators)."""
    body = f"(?:{_SEP}[a-z2-7]){{{ID_LEN + TAG_LEN}}}"
    plain = _SEP.join(PREFIX) + body
    rot = _SEP.join(PREFIX.translate(_ROT13)) + body
    rev = f"(?:[a-z2-7]{_SEP}){{{ID_LEN + TAG_LEN}}}" + _SEP.join(PREFIX[::-1])
    return tuple((name, re2.compile(p)) for name, p in (("plain", plain), ("rot13", rot), ("reversed", rev)))


def _to_plain(form: str, s: str) -> str:
    if form == "rot13":
        return s.translate(_ROT13)
    if form == "reversed":
        return s[::-1]
    return s


def _scan_text(text: str, key: bytes | None) -> list[tuple[str, int, int, bool, str]]:
    """(id, start, end, verified, form) for every canary in one (folded) text."""
    out = []
    for form, rx in _patterns():
        for m in rx.finditer(text):
            plain = _to_plain(form, m.group(0))
            chars = "".join(c for c in plain if c.isalnum())
            cid, tag = chars[len(PREFIX): len(PREFIX) + ID_LEN], chars[len(PREFIX) + ID_LEN:]
            if not well_formed(cid):
                continue
            if key is not None:
                if not hmac.compare_digest(tag, _tag(key, cid)):
                    continue
                verified = True
            else:
                if plain != f"{PREFIX}-{cid}-{tag}":
                    continue
                verified = False
            out.append((cid, m.start(), m.end(), verified, form))
    return out


def find(text_or_views: str | Views, key: bytes | None = None) -> list[CanaryHit]:
    """Every canary token in a text or its normalised views, with spans into the original text.

    With ``key``, only tokens whose tag verifies under it; without, every well-formed token
    (``verified=False``). One hit per (id, span), most direct view first.
    """
    if key is not None:
        key = _check_key(key)
    views = normalize(text_or_views) if isinstance(text_or_views, str) else text_or_views
    hits: list[CanaryHit] = []
    seen: set[tuple[str, int, int]] = set()
    for view in views.views:
        if view.name not in ("folded", "despaced", "decoded"):
            continue
        name = view.name if not view.source else f"{view.name}:{view.source}"
        for cid, s, e, verified, form in _scan_text(view.text, key):
            start, end = view.to_original(s, e)
            if (cid, start, end) in seen:
                continue
            seen.add((cid, start, end))
            hits.append(CanaryHit(cid, Span(start, end), verified, form, name))
    return hits
