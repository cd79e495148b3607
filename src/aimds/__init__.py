"""AIMDS — the AI Manipulation Defense System.

>>> import aimds
>>> verdict = aimds.Guard().scan("What is the capital of France?")
>>> verdict.action
<Action.ALLOW: 'allow'>
"""

from __future__ import annotations

from typing import Any

from aimds.config import Settings
from aimds.errors import AIMDSError, ConfigError, InputError, InputTooLargeError, ModelError
from aimds.pipeline import Guard
from aimds.types import Action, Category, Direction, Finding, Role, ScanRequest, Span, TierError, Verdict

__version__ = "0.1.0"

__all__ = [
    "AIMDSError",
    "Action",
    "Category",
    "ConfigError",
    "Direction",
    "Finding",
    "Guard",
    "InputError",
    "InputTooLargeError",
    "ModelError",
    "Role",
    "ScanRequest",
    "Settings",
    "Span",
    "TierError",
    "Verdict",
    "scan",
]

_default_guard: Guard | None = None


def scan(text: str | ScanRequest, **fields: Any) -> Verdict:
    """Scan with a process-wide default :class:`Guard` (created on first use)."""
    global _default_guard
    if _default_guard is None:
        _default_guard = Guard()
    return _default_guard.scan(text, **fields)
