"""Generator for the held-out attack families in ``benchmarks/data/memory_families.yaml``."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import yaml

FAMILIES_FILE = Path(__file__).resolve().parent / "data" / "memory_families.yaml"
_SLOT = re.compile(r"\{(\w+)\}")
_FUNC = re.compile(r"@(\w+)\(([^()]*)\)")


def atbash(s: str) -> str:
    """The Atbash cipher (a↔z, A↔Z)."""
    out = []
    for ch in s:
        if "a" <= ch <= "z":
            out.append(chr(ord("z") - (ord(ch) - ord("a"))))
        elif "A" <= ch <= "Z":
            out.append(chr(ord("Z") - (ord(ch) - ord("A"))))
        else:
            out.append(ch)
    return "".join(out)


_FUNCS = {"atbash": atbash}


def _expand(template: str, slots: dict[str, list[str]], rng: random.Random, depth: int = 0) -> str:
    if depth > 10:
        raise ValueError("template nests too deep")
    text = _SLOT.sub(lambda m: _expand(rng.choice(slots[m.group(1)]), slots, rng, depth + 1), template)
    return _FUNC.sub(lambda m: _FUNCS[m.group(1)](m.group(2)), text)


def load_families(path: Path = FAMILIES_FILE) -> dict[str, Any]:
    """The families file as a mapping name → spec."""
    return yaml.safe_load(path.read_text("utf-8"))["families"]  # type: ignore[no-any-return]


def family_texts(name: str, n: int, seed: int = 13, path: Path = FAMILIES_FILE) -> list[str]:
    """``n`` distinct members of family ``name`` (deterministic per seed)."""
    spec = load_families(path)[name]
    rng = random.Random(f"{seed}:{name}")
    out: list[str] = []
    seen: set[str] = set()
    for _ in range(n * 50):
        t = " ".join(_expand(rng.choice(spec["templates"]), spec["slots"], rng).split(" ")).strip()
        t = re.sub(r"  +", " ", t)
        if t not in seen:
            seen.add(t)
            out.append(t)
        if len(out) == n:
            break
    return out
