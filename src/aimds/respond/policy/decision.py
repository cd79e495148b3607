"""Decision policy: a pure function from findings and a policy file to an action and a risk."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aimds.errors import ConfigError
from aimds.types import Action, Category, Finding, Role, TierError

ALLOW_TAG = "aimds:allow"  # set by the memory detector on a confirmed-benign near-duplicate


@dataclass(frozen=True)
class Policy:
    """A parsed policy file (see ``data/policies/default.yaml``)."""

    name: str
    block: float
    monitor: float
    fail_mode: str = "closed"
    fail_action: Action = Action.BLOCK
    role_actions: Mapping[Role, Mapping[Action, Action]] = field(default_factory=dict)
    category_caps: Mapping[Category, Action] = field(default_factory=dict)
    min_score: float = 0.05
    #: Data categories (PII, secrets): they do not add to the threat risk; a finding of one at or above
    #: the monitor threshold raises the action to at least the mapped one (e.g. ``redact``).
    data_actions: Mapping[Category, Action] = field(default_factory=dict)
    #: Detectors whose findings a confirmed-benign memory match (a finding tagged ``aimds:allow``) discounts.
    allow_silences: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Policy:
        """Validate a raw mapping."""
        try:
            th = raw["thresholds"]
            block, monitor = float(th["block"]), float(th["monitor"])
            if not 0 < monitor <= block <= 1:
                raise ConfigError("policy thresholds must satisfy 0 < monitor <= block <= 1")
            fail_mode = raw.get("fail_mode", "closed")
            if fail_mode not in ("closed", "open"):
                raise ConfigError("policy fail_mode must be 'closed' or 'open'")
            roles = {Role(r): {Action(k): Action(v) for k, v in m.items()}
                     for r, m in (raw.get("role_actions") or {}).items()}
            caps = {Category(c): Action(a) for c, a in (raw.get("category_caps") or {}).items()}
            data = {Category(c): Action(a) for c, a in (raw.get("data_actions") or {}).items()}
            if set(data) & set(caps):
                raise ConfigError("a category cannot be both capped and a data category")
            return cls(name=str(raw.get("name", "custom")), block=block, monitor=monitor,
                       fail_mode=fail_mode, fail_action=Action(raw.get("fail_action", "block")),
                       role_actions=roles, category_caps=caps, min_score=float(raw.get("min_score", 0.05)),
                       data_actions=data,
                       allow_silences=tuple(str(d) for d in (raw.get("allow_exemplars") or {}).get("silences", ())))
        except ConfigError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"invalid policy: {exc}") from None

    @classmethod
    def load(cls, path: Path | str | None = None) -> Policy:
        """Load a policy file; ``None`` or a bare name loads a shipped policy."""
        if path is None or (isinstance(path, str) and "/" not in path and not path.endswith(".yaml")):
            name = path or "default"
            res = resources.files("aimds").joinpath(f"data/policies/{name}.yaml")
            if not res.is_file():
                raise ConfigError(f"no shipped policy named {name!r}")
            text = res.read_text("utf-8")
        else:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot read policy {path}: {exc}") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"policy is not valid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError("policy must be a mapping")
        return cls.from_dict(raw)


def combine(findings: Iterable[Finding], min_score: float = 0.0) -> float:
    """Noisy-OR of the strongest score per detector."""
    best: dict[str, float] = {}
    for f in findings:
        if f.score >= min_score:
            best[f.detector] = max(best.get(f.detector, 0.0), f.score)
    keep = 1.0
    for s in best.values():
        keep *= 1.0 - s
    return 1.0 - keep


@dataclass(frozen=True)
class Decision:
    """The output of :func:`decide`."""

    action: Action
    risk: float
    categories: tuple[Category, ...]
    #: The action the threat detectors alone call for (``action`` may be higher because of PII/secrets).
    threat_action: Action = Action.ALLOW


def decide(findings: Iterable[Finding], role: Role, policy: Policy,
           errors: Iterable[TierError] = ()) -> Decision:
    """Map findings (and detector errors) to an action, a risk and the threat categories.

    The risk is the noisy-OR of the threat findings (data categories such as PII do not count); data
    findings at or above the monitor threshold raise the action to their ``data_actions`` entry.
    """
    findings = list(findings)
    if policy.allow_silences and any(ALLOW_TAG in f.tags for f in findings):
        # a near-duplicate of a confirmed false positive: the statistical detectors that erred on it do not count
        findings = [f for f in findings if f.detector not in policy.allow_silences]
    threat = [f for f in findings if f.category not in policy.data_actions]
    risk = combine(threat, policy.min_score)
    if risk >= policy.block:
        action = Action.BLOCK
    elif risk >= policy.monitor:
        action = Action.MONITOR
    else:
        action = Action.ALLOW
    uncapped = [f for f in threat if f.category not in policy.category_caps and f.score >= policy.min_score]
    if not uncapped and threat:
        # Only capped categories (e.g. obfuscation signals) spoke: they may not act alone above their cap.
        cap = max((policy.category_caps[f.category] for f in threat if f.category in policy.category_caps),
                  key=lambda a: a.rank, default=Action.ALLOW)
        action = min(action, cap, key=lambda a: a.rank)
    action = policy.role_actions.get(role, {}).get(action, action)
    errors = list(errors)
    if errors and policy.fail_mode == "closed":
        action = max(action, policy.fail_action, key=lambda a: a.rank)
    threat_action = action
    for f in findings:
        data_action = policy.data_actions.get(f.category)
        if data_action is not None and f.score >= policy.monitor:
            action = max(action, data_action, key=lambda a: a.rank)
    cats: dict[Category, float] = {}
    for f in findings:
        if f.score >= policy.monitor * 0.6:
            cats[f.category] = max(cats.get(f.category, 0.0), f.score)
    ordered = tuple(c for c, _ in sorted(cats.items(), key=lambda kv: -kv[1]))
    return Decision(action=action, risk=min(1.0, max(0.0, risk)), categories=ordered, threat_action=threat_action)
