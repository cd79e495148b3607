"""Response actions: what to do after a verdict or a policy violation, how urgent it is, and by when.

An action has a kind (``block``, ``require_confirmation``, ``quarantine_session``, ``alert_webhook``,
``alert_log``, ``escalate``), a priority (critical > high > medium > low) and a deadline in milliseconds
from its creation. Defaults per priority and per kind, and the rules that map a verdict (action,
categories, risk) or a policy violation (severity, action) to actions, are data:
``data/response/actions.yaml``::

    config = ResponseConfig.load()
    config.for_verdict("block", ["secret"], 0.95, session_id="s1", event_id="evt_1")
    # -> block, quarantine_session (critical), alert_webhook (high), alert_log (medium)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from aimds.errors import ConfigError
from aimds.store.sqlite import new_id


class ActionKind(StrEnum):
    """What a response action does."""

    BLOCK = "block"                                  # flag the session: refuse its requests for ttl_s
    REQUIRE_CONFIRMATION = "require_confirmation"    # flag the session: the user must confirm the next action
    QUARANTINE_SESSION = "quarantine_session"        # quarantine the session until now + ttl_s (persisted)
    ALERT_WEBHOOK = "alert_webhook"                  # signed POST to the operator's webhook (outbox, retries)
    ALERT_LOG = "alert_log"                          # a JSON line on the ``aimds.alerts`` logger
    ESCALATE = "escalate"                            # hand to human review


class Priority(IntEnum):
    """Urgency; a lower value runs first."""

    CRITICAL = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        """A priority from its name (``"critical"``) or value."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ConfigError(f"unknown priority {value!r}; expected one of {', '.join(p.label for p in cls)}") \
                from None

    @property
    def label(self) -> str:
        """The lower-case name (``critical``)."""
        return self.name.lower()


LANES: Final = ("local", "io")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ResponseAction:
    """One action to run. ``created`` is epoch seconds; the deadline is ``created + deadline_ms / 1000``."""

    kind: ActionKind
    priority: Priority
    deadline_ms: int
    id: str = field(default_factory=lambda: new_id("act"))
    created: float = field(default_factory=time.time)
    session_id: str | None = None
    event_id: str | None = None        # the detection event (evt_…) or violation (vio_…) that caused it
    reason: str = ""                   # rule id that chose it
    payload: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    attempts: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ActionKind(self.kind))
        object.__setattr__(self, "priority", Priority.parse(self.priority))
        if self.deadline_ms <= 0:
            raise ValueError(f"deadline_ms must be positive, got {self.deadline_ms}")

    @property
    def deadline(self) -> float:
        """Epoch seconds by which the action should have run."""
        return self.created + self.deadline_ms / 1000.0

    def with_attempts(self, attempts: int) -> ResponseAction:
        """A copy with the attempt count updated."""
        return replace(self, attempts=attempts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (what the outbox stores)."""
        return {"id": self.id, "kind": str(self.kind), "priority": self.priority.label,
                "deadline_ms": self.deadline_ms, "created": self.created, "session_id": self.session_id,
                "event_id": self.event_id, "reason": self.reason, "payload": dict(self.payload),
                "attempts": self.attempts}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ResponseAction:
        """The inverse of :meth:`to_dict`."""
        return cls(kind=ActionKind(d["kind"]), priority=Priority.parse(d["priority"]),
                   deadline_ms=int(d["deadline_ms"]), id=str(d["id"]), created=float(d["created"]),
                   session_id=d.get("session_id"), event_id=d.get("event_id"), reason=str(d.get("reason", "")),
                   payload=MappingProxyType(dict(d.get("payload") or {})), attempts=int(d.get("attempts", 0)))


@dataclass(frozen=True, slots=True)
class KindSpec:
    """Defaults for one action kind."""

    kind: ActionKind
    priority: Priority
    lane: str
    durable: bool
    ttl_s: float | None = None


@dataclass(frozen=True, slots=True)
class _Planned:
    kind: ActionKind
    priority: Priority | None
    deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class Rule:
    """``when`` all conditions hold, add ``actions``."""

    id: str
    when: Mapping[str, Any]
    actions: tuple[_Planned, ...]

    def matches(self, facts: Mapping[str, Any]) -> bool:
        """Whether every condition of ``when`` holds for ``facts`` (action, severity, categories, risk)."""
        for key, want in self.when.items():
            if key in ("action", "severity"):
                if facts.get(key) not in want:
                    return False
            elif key == "categories_any":
                if not set(want) & set(facts.get("categories", ())):
                    return False
            elif key == "risk_min":
                if float(facts.get("risk", 0.0)) < want:
                    return False
            elif key == "risk_max" and float(facts.get("risk", 0.0)) > want:
                return False
        return True


_WHEN_KEYS: Final = {"verdict_rules": {"action", "categories_any", "risk_min", "risk_max"},
                     "violation_rules": {"action", "severity"}}


@dataclass(frozen=True)
class ResponseConfig:
    """Deadlines per priority, defaults per kind and the verdict/violation → actions rules."""

    deadlines_ms: Mapping[Priority, int]
    kinds: Mapping[ActionKind, KindSpec]
    verdict_rules: tuple[Rule, ...]
    violation_rules: tuple[Rule, ...]
    source: str = ""

    @classmethod
    def load(cls, path: Path | str | None = None) -> ResponseConfig:
        """Read a YAML file (default: the shipped ``data/response/actions.yaml``)."""
        if path is None:
            return _default()
        return cls.parse(yaml.safe_load(Path(path).read_text("utf-8")), str(path))

    @classmethod
    def parse(cls, raw: Any, source: str = "<config>") -> ResponseConfig:
        """Validate a parsed YAML document; errors name the file and the entry."""
        if not isinstance(raw, Mapping) or raw.get("version") != 1:
            raise ConfigError(f"{source}: expected a mapping with version: 1")
        deadlines: dict[Priority, int] = {}
        for name, spec in (raw.get("priorities") or {}).items():
            ms = (spec or {}).get("deadline_ms")
            if not isinstance(ms, int) or ms <= 0:
                raise ConfigError(f"{source}: priorities.{name}.deadline_ms must be a positive integer")
            deadlines[Priority.parse(name)] = ms
        missing = [p.label for p in Priority if p not in deadlines]
        if missing:
            raise ConfigError(f"{source}: priorities lack {', '.join(missing)}")
        kinds: dict[ActionKind, KindSpec] = {}
        for name, spec in (raw.get("kinds") or {}).items():
            try:
                kind = ActionKind(name)
            except ValueError:
                raise ConfigError(f"{source}: unknown action kind {name!r}") from None
            spec = spec or {}
            lane = spec.get("lane", "local")
            if lane not in LANES:
                raise ConfigError(f"{source}: kinds.{name}.lane must be one of {', '.join(LANES)}")
            ttl = spec.get("ttl_s")
            kinds[kind] = KindSpec(kind, Priority.parse(spec.get("priority", "medium")), lane,
                                   bool(spec.get("durable", False)), None if ttl is None else float(ttl))
        missing = [str(k) for k in ActionKind if k not in kinds]
        if missing:
            raise ConfigError(f"{source}: kinds lack {', '.join(missing)}")
        rules = {name: tuple(_rule(r, i, name, source) for i, r in enumerate(raw.get(name) or ()))
                 for name in ("verdict_rules", "violation_rules")}
        return cls(MappingProxyType(deadlines), MappingProxyType(kinds), rules["verdict_rules"],
                   rules["violation_rules"], source)

    # ----------------------------------------------------------------- building actions
    def make(self, kind: ActionKind | str, *, priority: Priority | str | None = None, deadline_ms: int | None = None,
             session_id: str | None = None, event_id: str | None = None, reason: str = "",
             payload: Mapping[str, Any] | None = None) -> ResponseAction:
        """One action with this config's defaults for its kind and priority."""
        kind = ActionKind(kind)
        spec = self.kinds[kind]
        prio = spec.priority if priority is None else Priority.parse(priority)
        body = dict(payload or {})
        if spec.ttl_s is not None:
            body.setdefault("ttl_s", spec.ttl_s)
        return ResponseAction(kind, prio, deadline_ms or self.deadlines_ms[prio], session_id=session_id,
                              event_id=event_id, reason=reason, payload=MappingProxyType(body))

    def for_verdict(self, action: str, categories: Iterable[str], risk: float, *, session_id: str | None = None,
                    event_id: str | None = None, payload: Mapping[str, Any] | None = None
                    ) -> list[ResponseAction]:
        """The actions for a verdict (e.g. ``str(verdict.action)``, ``[str(c) for c in verdict.categories]``)."""
        cats = [str(c) for c in categories]
        facts = {"action": str(action), "categories": cats, "risk": float(risk)}
        body = {"source": "verdict", "verdict_action": str(action), "categories": cats, "risk": round(risk, 4),
                **(payload or {})}
        return self._plan(self.verdict_rules, facts, session_id, event_id, body)

    def for_event(self, event: Mapping[str, Any]) -> list[ResponseAction]:
        """The actions for a stored detection event (:func:`aimds.server.events.make_event`)."""
        extra = {k: event[k] for k in ("key_id", "user_id", "tenant", "route", "rules", "input_hmac", "ts")
                 if event.get(k) is not None}
        return self.for_verdict(event["action"], event.get("categories") or (), float(event.get("risk", 0.0)),
                                session_id=event.get("session_id"), event_id=event.get("id"), payload=extra)

    def for_violation(self, severity: str, action: str, *, policy_id: str = "", session_id: str | None = None,
                      event_id: str | None = None, payload: Mapping[str, Any] | None = None
                      ) -> list[ResponseAction]:
        """The actions for an agent-policy violation (its ``severity`` and ``action``)."""
        facts = {"severity": severity, "action": action}
        body = {"source": "violation", "policy_id": policy_id, "severity": severity, "policy_action": action,
                **(payload or {})}
        return self._plan(self.violation_rules, facts, session_id, event_id, body)

    def _plan(self, rules: Sequence[Rule], facts: Mapping[str, Any], session_id: str | None,
              event_id: str | None, payload: Mapping[str, Any]) -> list[ResponseAction]:
        chosen: dict[ActionKind, tuple[Priority, int | None, str]] = {}
        for rule in rules:
            if not rule.matches(facts):
                continue
            for p in rule.actions:
                prio = p.priority if p.priority is not None else self.kinds[p.kind].priority
                if p.kind not in chosen or prio < chosen[p.kind][0]:
                    chosen[p.kind] = (prio, p.deadline_ms, rule.id)
        out = [self.make(kind, priority=prio, deadline_ms=ms, session_id=session_id, event_id=event_id,
                         reason=rid, payload=payload) for kind, (prio, ms, rid) in chosen.items()]
        out.sort(key=lambda a: (a.priority, list(ActionKind).index(a.kind)))
        return out


def _rule(raw: Any, i: int, section: str, source: str) -> Rule:
    here = f"{source}: {section}[{i}]"
    if not isinstance(raw, Mapping) or "id" not in raw or "actions" not in raw:
        raise ConfigError(f"{here}: a rule needs id and actions")
    when = dict(raw.get("when") or {})
    unknown = set(when) - _WHEN_KEYS[section]
    if unknown:
        raise ConfigError(f"{here} ({raw['id']}): unknown condition(s) {', '.join(sorted(unknown))}")
    for key in ("action", "severity", "categories_any"):
        if key in when:
            if isinstance(when[key], str):
                when[key] = [when[key]]
            when[key] = frozenset(str(v) for v in when[key])
    planned = []
    for a in raw["actions"]:
        spec = {"kind": a} if isinstance(a, str) else dict(a)
        try:
            kind = ActionKind(spec["kind"])
        except (KeyError, ValueError):
            raise ConfigError(f"{here} ({raw['id']}): unknown action {a!r}") from None
        prio = spec.get("priority")
        planned.append(_Planned(kind, None if prio is None else Priority.parse(prio), spec.get("deadline_ms")))
    return Rule(str(raw["id"]), MappingProxyType(when), tuple(planned))


@cache
def _default() -> ResponseConfig:
    text = resources.files("aimds").joinpath("data/response/actions.yaml").read_text("utf-8")
    return ResponseConfig.parse(yaml.safe_load(text), "data/response/actions.yaml")
