"""Policies: the decision policy (scores → action) and temporal (LTLf) policies over agent traces."""

from aimds.respond.policy.agent import AgentPolicy, PolicySet, Violation, load_policies
from aimds.respond.policy.atoms import AtomMapper
from aimds.respond.policy.decision import Decision, Policy, combine, decide
from aimds.respond.policy.ltl import Formula, FormulaError, parse
from aimds.respond.policy.progression import Monitor, StepResult, check_trace

__all__ = [
    "AgentPolicy",
    "AtomMapper",
    "Decision",
    "Formula",
    "FormulaError",
    "Monitor",
    "Policy",
    "PolicySet",
    "StepResult",
    "Violation",
    "check_trace",
    "combine",
    "decide",
    "load_policies",
    "parse",
]
