"""Texts the latency benchmark cuts from given rows (``aimds bench --texts``)."""

from __future__ import annotations

import pytest

from aimds.errors import InputError
from aimds.eval.bench import texts_from_rows


def test_texts_reach_the_size_and_are_cut_there() -> None:
    rows = [f"row {i} " + "word " * (i % 7) for i in range(50)]
    for size in (100, 1000):
        texts = texts_from_rows(rows, size, 20, seed=3)
        assert len(texts) == 20
        assert all(len(t) == size for t in texts)
        assert all(t.startswith("row ") for t in texts)


def test_same_seed_same_texts_and_rows_are_joined_by_blank_lines() -> None:
    rows = ["alpha beta", "gamma delta", "epsilon"]
    assert texts_from_rows(rows, 60, 5, seed=1) == texts_from_rows(rows, 60, 5, seed=1)
    assert "\n\n" in texts_from_rows(rows, 60, 1, seed=1)[0]


def test_a_long_row_is_cut_to_the_size() -> None:
    assert texts_from_rows(["x" * 5000], 100, 2) == ["x" * 100, "x" * 100]


def test_no_usable_rows_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no non-empty texts"):
        texts_from_rows(["", "   "], 100, 3)
