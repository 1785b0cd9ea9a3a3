"""The embedding novelty test on hand-made points, where the answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from refit.monitoring.drift.novelty import kth_distance, novelties, novelty_p_value


def test_kth_distance_is_the_kth_smallest_euclidean_distance() -> None:
    points = np.array([[0.0, 0.0], [10.0, 0.0]])
    others = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0], [10.0, 1.0]])
    assert kth_distance(points, others, 1).tolist() == pytest.approx([1.0, 1.0])
    assert kth_distance(points, others, 2).tolist() == pytest.approx([2.0, np.hypot(7, 4)])
    assert kth_distance(points, others, 10).tolist() == pytest.approx(  # k past the rows
        [np.hypot(10, 1), np.hypot(10, 2)]
    )


def test_the_same_distribution_is_not_flagged() -> None:
    rng = np.random.default_rng(1)
    p_values = [
        novelty_p_value(rng.normal(size=(600, 8)), rng.normal(size=(300, 8)), seed=i)
        for i in range(20)
    ]
    assert min(p_values) > 0.001  # no false alarm at the default threshold in 20 draws
    assert np.mean(p_values) > 0.2


def test_a_minority_of_new_points_is_flagged() -> None:
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(600, 8))
    usual = rng.normal(size=(210, 8))
    new = rng.normal(loc=4.0, size=(90, 8))  # 30% of the window, far from everything known
    assert novelty_p_value(reference, np.vstack([usual, new])) < 1e-6


def test_reference_and_window_rows_are_measured_alike() -> None:
    rng = np.random.default_rng(3)
    same = rng.normal(size=(500, 4))
    ref_scores, cur_scores = novelties(same, same.copy(), seed=0)
    # The same rows, each measured against four fifths of the reference either way.
    assert abs(np.median(ref_scores) - np.median(cur_scores)) < 0.1 * np.median(ref_scores)


def test_too_small_a_reference_is_refused() -> None:
    with pytest.raises(ValueError, match="reference rows"):
        novelty_p_value(np.zeros((10, 2)), np.zeros((5, 2)))
