"""Oversampling rare classes for a challenger's training split."""

from __future__ import annotations

from collections import Counter

from refit.training.class_balance import oversample_indices, oversampled


def test_classes_below_the_median_are_lifted_to_it() -> None:
    labels = [0] * 100 + [1] * 90 + [2] * 80 + [3] * 7 + [4] * 30
    picked = oversample_indices(labels, seed=1)
    counts = Counter(labels[i] for i in picked)
    assert counts == {0: 100, 1: 90, 2: 80, 3: 80, 4: 80}
    assert sorted(set(picked)) == list(range(len(labels)))  # every row kept


def test_repeats_spread_evenly_over_a_rare_class() -> None:
    labels = [0] * 50 + [1] * 50 + [2] * 50 + [3] * 7
    rare = Counter(i for i in oversample_indices(labels, seed=3) if labels[i] == 3)
    assert set(rare.values()) <= {7, 8}  # 50 = 7 copies of 7 rows, plus 1 sampled


def test_balanced_or_single_class_data_is_left_alone() -> None:
    assert oversample_indices([0, 1, 0, 1], seed=0) == [0, 1, 2, 3]
    assert oversample_indices([2, 2, 2], seed=0) == [0, 1, 2]


def test_oversampled_items_keep_their_inputs_and_are_seeded() -> None:
    items = [([i], 0) for i in range(6)] + [([10 + i], 1) for i in range(6)] + [([99], 2)]
    first, second = oversampled(items, seed=5), oversampled(items, seed=5)
    assert first == second
    assert first.count(([99], 2)) == 6
    assert first[: len(items)] == items
