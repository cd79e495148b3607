"""Policies: the decision policy (scores → action) and, beside it, temporal policies over agent traces."""

from aimds.respond.policy.decision import Decision, Policy, combine, decide

__all__ = ["Decision", "Policy", "combine", "decide"]
