"""Bucket edges (exactly 0, exactly 1, too few attempts), custom thresholds, and the per-step metrics."""

from __future__ import annotations

import numpy as np
import pytest

from verl_rise.passrate.buckets import (
    HARD,
    INCONSISTENT,
    SOLVED,
    UNSEEN,
    BucketThresholds,
    bucket_metrics,
    classify,
)


def test_default_edges_are_exact():
    attempts = np.array([8, 8, 8, 8, 8, 0, 2])
    correct = np.array([0, 1, 7, 8, 4, 0, 2])
    codes = classify(attempts, correct, BucketThresholds(min_attempts=3))
    # 0/8 hard, 1/8 and 7/8 inconsistent, 8/8 solved; 0 attempts and 2/2 (below min_attempts) unseen.
    assert list(codes) == [HARD, INCONSISTENT, INCONSISTENT, SOLVED, INCONSISTENT, UNSEEN, UNSEEN]


def test_min_attempts_boundary_is_inclusive():
    codes = classify(np.array([3, 2]), np.array([3, 2]), BucketThresholds(min_attempts=3))
    assert list(codes) == [SOLVED, UNSEEN]


def test_custom_thresholds_move_the_edges():
    th = BucketThresholds(solved_threshold=0.75, hard_threshold=0.25, min_attempts=4)
    codes = classify(np.full(5, 4), np.array([0, 1, 2, 3, 4]), th)
    assert list(codes) == [HARD, HARD, INCONSISTENT, SOLVED, SOLVED]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"solved_threshold": 0.0},
        {"hard_threshold": 1.0},
        {"solved_threshold": 0.5, "hard_threshold": 0.5},
        {"solved_threshold": 1.5},
        {"hard_threshold": -0.1},
        {"min_attempts": 0},
        {"min_attempts": 1.5},
    ],
)
def test_invalid_thresholds_are_rejected(kwargs):
    with pytest.raises(ValueError):
        BucketThresholds(**kwargs)


def test_metrics_fractions_and_movements():
    prev = np.array([HARD, HARD, INCONSISTENT, UNSEEN], np.int8)
    now = np.array([HARD, INCONSISTENT, SOLVED, HARD, SOLVED], np.int8)  # the 5th prompt is new
    rate = np.array([0.0, 0.5, 1.0, 0.0, 1.0])
    m = bucket_metrics(now, prev, rate)
    assert m["passrate/num_prompts"] == 5
    assert (m["passrate/num_hard"], m["passrate/num_inconsistent"], m["passrate/num_solved"]) == (2, 1, 2)
    assert m["passrate/num_unseen"] == 0
    assert m["passrate/hard_frac"] == pytest.approx(0.4)
    assert m["passrate/inconsistent_frac"] == pytest.approx(0.2)
    assert m["passrate/solved_frac"] == pytest.approx(0.4)
    assert m["passrate/mean_pass_rate"] == pytest.approx(0.5)
    assert m["passrate/moved"] == 4
    assert m["passrate/moved/hard_to_inconsistent"] == 1
    assert m["passrate/moved/inconsistent_to_solved"] == 1
    assert m["passrate/moved/unseen_to_hard"] == 1
    assert m["passrate/moved/unseen_to_solved"] == 1
    assert m["passrate/moved/solved_to_hard"] == 0
    assert all(isinstance(v, float) for v in m.values())


def test_metrics_with_nothing_classified_are_zero_not_nan():
    m = bucket_metrics(np.array([UNSEEN, UNSEEN], np.int8), None, np.array([np.nan, np.nan]))
    assert m["passrate/hard_frac"] == 0.0 and m["passrate/mean_pass_rate"] == 0.0
    assert "passrate/moved" not in m
