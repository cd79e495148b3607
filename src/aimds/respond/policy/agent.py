"""Temporal policies over agent traces: YAML policy files, and a set of monitors run over one trace.

A policy file (see ``data/policies/agent/*.yaml``)::

    version: 1
    policies:
      - id: untrusted-no-outbound-without-confirmation
        description: After reading untrusted content, nothing leaves until the user confirms.
        severity: high            # low | medium | high | critical
        action: block             # block | require_confirmation | quarantine | alert | escalate
        formula: G(source:untrusted -> (!action:outbound U user:confirmed | G !action:outbound))
        examples:
          satisfy: [[[source:untrusted], [user:confirmed], [action:outbound]]]
          violate: [{trace: [[source:untrusted], [action:outbound]], step: 1}]

Formula errors name the file, the policy id and the position in the formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from aimds.errors import ConfigError
from aimds.respond.policy.ltl import Formula, FormulaError, parse
from aimds.respond.policy.progression import Automaton, Monitor, compile_formula

SEVERITIES: Final = ("low", "medium", "high", "critical")
ACTIONS: Final = ("block", "require_confirmation", "quarantine", "alert", "escalate")
_KEYS: Final = frozenset({"id", "description", "formula", "severity", "action", "examples", "tags", "references"})


@dataclass(frozen=True)
class PolicyExample:
    """A trace the policy must satisfy (``step is None``) or violate at ``step``."""

    trace: tuple[frozenset[str], ...]
    step: int | None = None


@dataclass(frozen=True)
class AgentPolicy:
    """One temporal policy: what an agent may never do, and what to do when it tries."""

    id: str
    description: str
    formula: Formula
    severity: str = "high"
    action: str = "block"
    satisfy: tuple[PolicyExample, ...] = ()
    violate: tuple[PolicyExample, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = ""

    @property
    def text(self) -> str:
        """The formula as text."""
        return str(self.formula)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "") -> AgentPolicy:
        """Validate one policy mapping; errors say where (``source``, policy id, formula position)."""
        where = f"{source}: " if source else ""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}a policy must be a mapping")
        pid = raw.get("id")
        if not isinstance(pid, str) or not pid.strip():
            raise ConfigError(f"{where}a policy needs a non-empty string id")
        here = f"{source}: policy {pid}" if source else f"policy {pid}"
        unknown = set(raw) - _KEYS
        if unknown:
            raise ConfigError(f"{here}: unknown keys {sorted(unknown)}")
        text = raw.get("formula")
        if not isinstance(text, str):
            raise ConfigError(f"{here}: 'formula' must be a string")
        try:
            formula = parse(text.strip())
            compile_formula(formula)
        except FormulaError as exc:
            raise exc.located(here) from None
        severity = raw.get("severity", "high")
        if severity not in SEVERITIES:
            raise ConfigError(f"{here}: severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        action = raw.get("action", "block")
        if action not in ACTIONS:
            raise ConfigError(f"{here}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
        examples = raw.get("examples") or {}
        if not isinstance(examples, Mapping) or set(examples) - {"satisfy", "violate"}:
            raise ConfigError(f"{here}: 'examples' must be a mapping with 'satisfy' and/or 'violate'")
        satisfy = tuple(PolicyExample(_trace(t, here)) for t in examples.get("satisfy") or [])
        violate = []
        for ex in examples.get("violate") or []:
            if not isinstance(ex, Mapping) or "trace" not in ex or not isinstance(ex.get("step"), int):
                raise ConfigError(f"{here}: a 'violate' example is {{trace: [[atom, …], …], step: int}}")
            violate.append(PolicyExample(_trace(ex["trace"], here), ex["step"]))
        tags = raw.get("tags") or []
        return cls(id=pid, description=str(raw.get("description", "")).strip(), formula=formula,
                   severity=severity, action=action, satisfy=satisfy, violate=tuple(violate),
                   tags=tuple(str(t) for t in tags), source=source)


def _trace(raw: Any, where: str) -> tuple[frozenset[str], ...]:
    if not isinstance(raw, list) or not all(isinstance(s, list) and all(isinstance(a, str) for a in s) for s in raw):
        raise ConfigError(f"{where}: an example trace is a list of steps, each a list of atoms")
    return tuple(frozenset(s) for s in raw)


def builtin_policy_files() -> list[Path]:
    """The shipped policy files (every ``*.yaml`` in ``data/policies/agent`` but ``atoms.yaml``)."""
    root = resources.files("aimds").joinpath("data/policies/agent")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml") and p.name != "atoms.yaml")


def load_policies(paths: Iterable[Path | str] | None = None) -> list[AgentPolicy]:
    """Load and validate policy files (the shipped library when ``paths`` is ``None``); ids must be unique."""
    out: list[AgentPolicy] = []
    seen: dict[str, str] = {}
    for path in builtin_policy_files() if paths is None else [Path(p) for p in paths]:
        try:
            raw = yaml.safe_load(path.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(raw, Mapping) or raw.get("version") != 1 or not isinstance(raw.get("policies"), list):
            raise ConfigError(f"{path}: a policy file is a mapping with version: 1 and a list of policies")
        for item in raw["policies"]:
            policy = AgentPolicy.from_dict(item, source=str(path))
            if policy.id in seen:
                raise ConfigError(f"{path}: policy id {policy.id!r} already defined in {seen[policy.id]}")
            seen[policy.id] = str(path)
            out.append(policy)
    return out


@dataclass(frozen=True)
class Violation:
    """A policy violated on a trace: at which step, which part of the formula, and the response."""

    policy_id: str
    step: int
    failed: str
    severity: str
    action: str
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {"policy_id": self.policy_id, "step": self.step, "failed": self.failed, "severity": self.severity,
                "action": self.action, "description": self.description}


@dataclass
class PolicySet:
    """Many policies monitored over one trace: one :class:`Monitor` per policy.

    Compiled automata are shared, so :meth:`fresh` (a new trace) is cheap. A policy reports its
    violation once, at the step where it becomes certain; :meth:`finish` reports the policies the
    trace violates by ending (an obligation still open).
    """

    policies: Sequence[AgentPolicy]
    _monitors: list[Monitor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ids = [p.id for p in self.policies]
        if len(set(ids)) != len(ids):
            raise ConfigError("policy ids must be unique")
        automata: list[Automaton] = [compile_formula(p.formula) for p in self.policies]
        self._monitors = [Monitor(a) for a in automata]

    @classmethod
    def load(cls, paths: Iterable[Path | str] | None = None) -> PolicySet:
        """A set of the policies in these files (the shipped library by default)."""
        return cls(load_policies(paths))

    def fresh(self) -> PolicySet:
        """The same policies, for a new trace."""
        return PolicySet(self.policies)

    def reset(self) -> None:
        """Start a new trace with these monitors."""
        for m in self._monitors:
            m.reset()

    @property
    def steps(self) -> int:
        """How many steps this trace has had."""
        return self._monitors[0].steps if self._monitors else 0

    def _violation(self, policy: AgentPolicy, step: int, failed: str | None) -> Violation:
        return Violation(policy.id, step, failed or str(policy.formula), policy.severity, policy.action,
                         policy.description)

    def step(self, atoms: Set[str]) -> list[Violation]:
        """Consume one step; the policies that became violated at it."""
        out = []
        for policy, m in zip(self.policies, self._monitors, strict=True):
            if m.advance(atoms):
                out.append(self._violation(policy, m.steps - 1, m.failed))
        return out

    def peek(self, atoms: Set[str]) -> list[Violation]:
        """The violations :meth:`step` would report for these atoms, without consuming the step
        (to decide on an action before the agent performs it)."""
        out = []
        for policy, m in zip(self.policies, self._monitors, strict=True):
            if m.violation_step is None:
                r = m.peek(atoms)
                if r.status == "violated":
                    out.append(self._violation(policy, r.step, r.failed))
        return out

    def finish(self) -> list[Violation]:
        """End the trace: the policies violated by ending it now (not those already reported)."""
        out = []
        for policy, m in zip(self.policies, self._monitors, strict=True):
            if m.violation_step is None and not m.finish():
                out.append(self._violation(policy, m.violation_step or 0, m.failed))
        return out

    def violated(self) -> list[str]:
        """Ids of the policies violated so far."""
        return [p.id for p, m in zip(self.policies, self._monitors, strict=True) if m.violation_step is not None]

    def check(self, trace: Iterable[Set[str]]) -> list[Violation]:
        """Every violation of a whole trace (a fresh run; this set's own state is untouched)."""
        run = self.fresh()
        out: list[Violation] = []
        for atoms in trace:
            out.extend(run.step(atoms))
        out.extend(run.finish())
        return out
