"""Hostile inputs to the PII/secret engine and to redaction finish quickly (linear-time matching)."""

from __future__ import annotations

import base64
import random
import time

import pytest

from aimds.detect.entities import find_entities
from aimds.respond.redact import MemoryVault, redact, restore

rng = random.Random(7)

CASES = {
    "1 MB of digits": "7" * 1_000_000,
    "1 MB of spaced digit groups": "4539 " * 200_000,
    "200 kB of base64": base64.b64encode(rng.randbytes(150_000)).decode(),
    "200 kB of hex": rng.randbytes(100_000).hex(),
    "100k '@'": "a@" * 100_000,
    "emails back to back, 200 kB": "x@y.co " * 30_000,
    "unterminated private key": "-----BEGIN RSA PRIVATE KEY-----\n" + ("A" * 64 + "\n") * 3000,
    "many key headers": "-----BEGIN PRIVATE KEY-----" * 20_000,
    "colons": ":" * 300_000,
    "hex and colons": "a:" * 200_000,
    "password= repeated": "password=" * 50_000,
    "api_key: x repeated": "api_key: " * 50_000,
    "dotted digits": "1." * 300_000,
    "placeholder look-alikes": "<EMAIL_1>" * 20_000,
    "lone surrogates": "\ud800" * 100_000 + "a@b.co",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_find_entities_is_fast(name: str) -> None:
    text = CASES[name]
    t0 = time.perf_counter()
    ents = find_entities(text)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"
    assert all(0 <= e.start < e.end <= len(text) for e in ents)


@pytest.mark.parametrize("name", ["emails back to back, 200 kB", "placeholder look-alikes", "lone surrogates"])
def test_redaction_round_trip_is_fast(name: str) -> None:
    text = CASES[name]
    vault = MemoryVault()
    t0 = time.perf_counter()
    red = redact(text, find_entities(text), vault)
    back = restore(red.text, vault, red.scope)
    assert time.perf_counter() - t0 < 2.0
    assert back == text
