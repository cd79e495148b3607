"""Deterministic synthetic multi-turn sessions for the session analysis (``aimds eval --sessions``).

Templates live in ``aimds/data/sessions/<split>.yaml`` and use the grammar of
:mod:`aimds.train.augment` (``{slot}``, ``{a|b}``, ``{?slot}``, ``{$sticky}``, ``{#gen}``); sticky
values are shared by all turns of one session, so a fragment defined in turn 1 can be named in turn 3.
The ``tune`` and ``eval`` splits are written separately (different wording, different slots) and
generated from different seeds: thresholds are tuned on ``tune`` only.

Each template::

    - id: split_vars            # unique within the split
      label: 1                  # 1 attack, 0 benign
      category: prompt_injection
      kind: split_payload       # reported per kind (split_payload, crescendo, probing, chain, benign_*)
      n: 20                     # sessions to generate
      pad: [0, 2]               # benign filler turns (slot `filler`) before the first turn
      turns: ["…", "…"]         # a turn that expands to an empty string is left out

``python -m aimds.train.sessions --split eval --out benchmarks/data/sessions_eval.jsonl``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

import yaml

from aimds.errors import ConfigError
from aimds.train.augment import Grammar, GrammarError

SPLITS = ("tune", "eval")
SEEDS = {"tune": 101, "eval": 202}


@cache
def load_templates(split: str) -> tuple[Grammar, list[dict[str, Any]]]:
    """The grammar and session templates of one split."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; known: {list(SPLITS)}")
    raw = yaml.safe_load((resources.files("aimds") / "data" / "sessions" / f"{split}.yaml").read_text("utf-8"))
    slots = {k: [("" if e is None else str(e)) for e in v] for k, v in (raw.get("slots") or {}).items()}
    templates = list(raw.get("sessions") or ())
    seen = set()
    for t in templates:
        for key in ("id", "label", "kind", "turns"):
            if key not in t:
                raise GrammarError(f"{split}: session template {t.get('id')} lacks {key!r}")
        if t["id"] in seen:
            raise GrammarError(f"{split}: duplicate template id {t['id']!r}")
        seen.add(t["id"])
        if int(t["label"]) == 1 and not t.get("category"):
            raise GrammarError(f"{split}: attack template {t['id']} needs a category")
    return Grammar(slots, {}), templates


def _rng(*parts: object) -> random.Random:
    return random.Random(hashlib.sha512("|".join(map(str, parts)).encode()).digest())


def _tidy(text: str) -> str:
    text = " ".join(text.replace(" ,", ",").replace(" .", ".").replace(" ?", "?").split(" "))
    text = "\n".join(" ".join(line.split()) for line in text.split("\\n"))
    text = text.strip()
    return text[:1].upper() + text[1:] if text and text[0].isalpha() and text[0].islower() and \
        not text.startswith(("let ", "a =", "x =")) else text


def generate(split: str, seed: int | None = None, scale: float = 1.0) -> list[dict[str, Any]]:
    """Every session of a split: ``{"session_id", "turns": [{"role", "text"}], "label", "category", "kind"}``."""
    grammar, templates = load_templates(split)
    seed = SEEDS[split] if seed is None else seed
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for t in templates:
        want = max(1, round(int(t.get("n", 10)) * scale))
        made = tries = 0
        while made < want and tries < want * 20:
            tries += 1
            rng = _rng(split, seed, t["id"], tries)
            env: dict[str, str] = {}
            lo, hi = t.get("pad", [0, 0])
            texts = [grammar.pick("filler", rng, env) for _ in range(rng.randint(lo, hi))]
            texts += [grammar.expand(x, rng, env) for x in t["turns"]]
            turns = [_tidy(x) for x in texts]
            turns = [x for x in turns if x]
            key = "\x1e".join(turns)
            if key in seen or len(turns) < 2:
                continue
            seen.add(key)
            made += 1
            row: dict[str, Any] = {"session_id": f"{split}-{t['id']}-{made:03d}",
                                   "turns": [{"role": "user", "text": x} for x in turns],
                                   "label": int(t["label"]), "kind": str(t["kind"])}
            row["category"] = str(t.get("category") or "benign")
            out.append(row)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Write one split's sessions as JSONL and print counts per kind."""
    ap = argparse.ArgumentParser(prog="python -m aimds.train.sessions", description=main.__doc__)
    ap.add_argument("--split", choices=SPLITS, required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    rows = generate(args.split, args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    kinds = Counter((r["label"], r["kind"]) for r in rows)
    for (label, kind), n in sorted(kinds.items()):
        print(f"{label} {kind:28s} {n:5d}")
    labels = Counter(r["label"] for r in rows)
    print(f"total {len(rows)}  attack {labels[1]}  benign {labels[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
