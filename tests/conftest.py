"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimds import Guard

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def guard() -> Guard:
    """The default guard, loaded once."""
    return Guard().load()


@pytest.fixture(scope="session")
def dev_path() -> Path:
    """The shared dev set (skips when the shared folder is absent)."""
    p = SHARED / "dev.jsonl"
    if not p.is_file():
        pytest.skip("../shared/datasets not present")
    return p
