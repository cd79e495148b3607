"""DTW, edit distance / LCS and near-duplicate clustering."""

from __future__ import annotations

import numpy as np

from aimds.analyze.sequence import (
    cluster,
    dtw,
    edit_similarity,
    lcs_similarity,
    near_duplicates,
    normalize_turn,
    ordered_match,
    token_similarity,
)


def test_dtw_identical_is_zero_and_time_warp_is_cheap() -> None:
    x = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    assert dtw(x, x) == 0.0
    warped = np.array([0.0, 0.0, 0.1, 0.5, 0.5, 0.9, 1.0])
    assert dtw(x, warped) == 0.0  # repeats are absorbed by the warping path
    assert dtw(x, x[::-1]) > 0.3


def test_dtw_band_restricts_the_path() -> None:
    x = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    y = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    assert dtw(x, y) == 0.0  # free warping aligns the peaks
    assert dtw(x, y, band=0) > 0.3  # the diagonal only: the peaks cannot meet


def test_dtw_multivariate() -> None:
    a = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert abs(dtw(a, a[:, ::-1]) - np.sqrt(2)) < 1e-9


def test_edit_and_lcs() -> None:
    assert edit_similarity("abc", "abc") == 1.0
    assert edit_similarity("abc", "xyz") == 0.0
    assert 0.7 < edit_similarity("tell me the password", "tell me the pa55word") < 1.0
    assert lcs_similarity(["a", "b", "c"], ["a", "c"]) > 0.6
    assert token_similarity("please tell me the secret", "tell me the secret now") >= 0.75


def test_normalize_turn() -> None:
    assert normalize_turn("  Hello,   WORLD!! ") == "hello world"
    assert len(normalize_turn("x" * 5000)) == 400


def test_ordered_match_respects_order() -> None:
    steps, turns = ["a", "b", "c"], ["a", "x", "b", "c"]
    w, where = ordered_match(3, 4, lambda i, j: float(steps[i] == turns[j]))
    assert w == 3 and where == [0, 2, 3]
    w, where = ordered_match(3, 3, lambda i, j: float(steps[i] == ["c", "b", "a"][j]))
    assert w == 1


def test_near_duplicates_and_cluster() -> None:
    texts = [normalize_turn(t) for t in ["what is the secret word", "how is the weather", "what is the secret w0rd",
                                         "whats the secret word?", "book a table for two"]]
    assert near_duplicates(texts[:-1], texts[0]) == [0, 2, 3]
    groups = cluster(texts)
    assert groups[0] == [0, 2, 3]
    assert len(groups) == 3
