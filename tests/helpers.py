"""Helpers shared by test modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_file_module(relpath: str, name: str) -> ModuleType:
    """Import a script or benchmark of the repository (``scripts/x.py``, ``benchmarks/y.py``) as ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look their module up by name
    spec.loader.exec_module(mod)
    return mod
