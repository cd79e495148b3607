"""Known multi-step attack chains (``data/chains/*.yaml``) and matching a session against them.

A turn is *normalised* to the set of step ids whose RE2 cues it hits (``steps.yaml``), plus the
steps whose example turns it closely resembles (word-LCS similarity). A chain matches when its
steps occur in order in the recent user turns — a weighted longest-common-subsequence alignment —
with the final step in the current turn. A DTW distance between the session's feature trajectory
and the chain's prototype trajectory (the features of its example turns) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import re2
import yaml

from aimds.analyze.sequence import dtw, normalize_turn, ordered_match, token_similarity
from aimds.errors import ConfigError
from aimds.types import Category

#: Word-LCS similarity to a step's example at which a turn counts as making that step.
EXAMPLE_SIMILARITY = 0.75
MAX_CUE_CHARS = 2000


@dataclass(frozen=True)
class Step:
    """One move of the step vocabulary."""

    id: str
    description: str
    pressure: float
    cues: tuple[str, ...]
    examples: tuple[str, ...]


@dataclass(frozen=True)
class ChainStep:
    """One step of a chain: any of ``steps`` matches; ``example`` is a turn making it."""

    steps: tuple[str, ...]
    example: str


@dataclass(frozen=True)
class Chain:
    """A known multi-step attack."""

    id: str
    title: str
    category: Category
    steps: tuple[ChainStep, ...]
    min_match: float = 1.0  # fraction of steps that must be found


@dataclass(frozen=True)
class ChainMatch:
    """How well a session's recent turns follow a chain."""

    chain: Chain
    fraction: float          # matched steps / chain steps
    turns: tuple[int, ...]   # index (into the turns given) of the turn matching each step, -1 if none
    dtw: float               # DTW distance of the session's features to the chain prototype


class ChainLibrary:
    """The step vocabulary and the chains, with a compiled cue set."""

    def __init__(self, steps: Sequence[Step], chains: Sequence[Chain]) -> None:
        self.steps = {s.id: s for s in steps}
        self.chains = tuple(chains)
        opts = re2.Options()
        opts.max_mem = 64 << 20
        self._set = re2.Set.SearchSet(opts)
        self._owner: list[str] = []
        for s in steps:
            for cue in s.cues:
                try:
                    ok = self._set.Add(cue) >= 0
                except re2.error:
                    ok = False
                if not ok:
                    raise ConfigError(f"step {s.id}: invalid cue {cue!r}")
                self._owner.append(s.id)
        self._set.Compile()
        self._examples = [(s.id, normalize_turn(e)) for s in steps for e in s.examples]
        self._examples += [(sid, normalize_turn(cs.example)) for c in chains for cs in c.steps
                           for sid in cs.steps[:1]]

    def tags(self, text: str) -> frozenset[str]:
        """The step ids a turn makes: cue hits plus close paraphrases of step examples."""
        lowered = " ".join(text[:MAX_CUE_CHARS].casefold().split())
        found = {self._owner[i] for i in (self._set.Match(lowered) or ())}
        norm = normalize_turn(text)
        for sid, ex in self._examples:
            if sid not in found and token_similarity(norm, ex) >= EXAMPLE_SIMILARITY:
                found.add(sid)
        return frozenset(found)

    def pressure(self, tags: frozenset[str]) -> float:
        """The largest pressure among a turn's steps (0 for none)."""
        return max((self.steps[t].pressure for t in tags), default=0.0)

    def match(self, tags: Sequence[frozenset[str]], features: np.ndarray | None = None,
              prototype: Callable[[str], Sequence[float]] | None = None) -> list[ChainMatch]:
        """Chains whose final step is in the last turn and whose steps are found in order.

        ``tags`` holds each recent user turn's step ids, oldest first. When ``features`` (one row
        per turn) and ``prototype`` (example text → feature vector) are given, each match also
        carries the DTW distance between the turns it spans and the chain's examples.
        """
        out = []
        n = len(tags)
        if n == 0:
            return out
        last = tags[-1]
        for chain in self.chains:
            if not last.intersection(chain.steps[-1].steps):
                continue
            k = len(chain.steps)

            def hit(i: int, j: int, chain: Chain = chain, k: int = k) -> float:
                if j == n - 1 and i != k - 1:
                    return 0.0  # the current turn is reserved for the final step
                return 1.0 if tags[j].intersection(chain.steps[i].steps) else 0.0

            weight, where = ordered_match(k, n, hit)
            if where[-1] != n - 1:
                continue
            fraction = weight / k
            if fraction + 1e-9 < chain.min_match:
                continue
            dist = float("nan")
            if features is not None and prototype is not None:
                first = min(j for j in where if j >= 0)
                proto = np.asarray([prototype(s.example) for s in chain.steps])
                dist = dtw(features[first:], proto, band=2)
            out.append(ChainMatch(chain, fraction, tuple(where), dist))
        out.sort(key=lambda m: (-m.fraction, -len(m.chain.steps)))
        return out


def _req(raw: dict[str, Any], key: str, where: str) -> Any:
    if key not in raw:
        raise ConfigError(f"{where}: missing {key!r}")
    return raw[key]


def parse(files: Sequence[tuple[str, str]]) -> ChainLibrary:
    """Build a library from ``(name, yaml text)`` pairs: ``steps:`` mappings and ``chains:`` lists."""
    steps: list[Step] = []
    chains: list[Chain] = []
    for name, text in files:
        raw = yaml.safe_load(text) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{name}: must be a mapping")
        for sid, s in (raw.get("steps") or {}).items():
            where = f"{name}: step {sid}"
            pressure = float(_req(s, "pressure", where))
            if not 0 <= pressure <= 1:
                raise ConfigError(f"{where}: pressure must be in [0, 1]")
            cues = tuple(_req(s, "cues", where))
            if not cues:
                raise ConfigError(f"{where}: needs cues")
            steps.append(Step(str(sid), str(_req(s, "description", where)), pressure, cues,
                              tuple(s.get("examples") or ())))
        for c in raw.get("chains") or ():
            where = f"{name}: chain {c.get('id')}"
            csteps = tuple(ChainStep(tuple(_req(s, "step", where)), str(_req(s, "example", where)))
                           for s in _req(c, "steps", where))
            if len(csteps) < 2:
                raise ConfigError(f"{where}: a chain needs at least two steps")
            try:
                category = Category(_req(c, "category", where))
            except ValueError:
                raise ConfigError(f"{where}: unknown category {c.get('category')!r}") from None
            chains.append(Chain(str(_req(c, "id", where)), str(_req(c, "title", where)), category, csteps,
                                float(c.get("min_match", 1.0))))
    ids = [s.id for s in steps]
    if len(set(ids)) != len(ids):
        raise ConfigError("duplicate step ids")
    cids = [c.id for c in chains]
    if len(set(cids)) != len(cids):
        raise ConfigError("duplicate chain ids")
    known = set(ids)
    for c in chains:
        for s in c.steps:
            unknown = set(s.steps) - known
            if unknown:
                raise ConfigError(f"chain {c.id}: unknown steps {sorted(unknown)}")
    return ChainLibrary(steps, chains)


@cache
def load_chains() -> ChainLibrary:
    """The shipped chain library (``aimds/data/chains/*.yaml``)."""
    root = resources.files("aimds") / "data" / "chains"
    files = sorted((p for p in root.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    return parse([(p.name, p.read_text("utf-8")) for p in files])
