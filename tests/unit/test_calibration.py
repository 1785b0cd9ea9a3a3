"""The accuracy estimate's calibration: binning, its error, the rows it is fitted on, and
cross-fitting, on tiny hand-made frames with hand-computed expectations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from refit.monitoring.drift.estimate import (
    accuracy_figures,
    cross_fitted,
    estimate_window,
    fold_of,
    labelled_rows,
)
from refit.monitoring.drift.estimate_text import calibration_words, estimate_words
from refit.training.calibration import Calibration, bin_count, fit_calibration


def test_bins_hold_equal_rows_and_their_accuracy() -> None:
    calibration = fit_calibration(
        [0.9, 0.3, 0.5, 0.4, 0.8, 0.6], [True, False, True, False, True, True], rows_per_bin=2
    )
    # Sorted: 0.3 0.4 | 0.5 0.6 | 0.8 0.9, cut halfway between neighbours.
    assert calibration.edges == pytest.approx([0.0, 0.45, 0.7, 1.0])
    assert calibration.values == [0.0, 1.0, 1.0]
    assert calibration.counts == [2, 2, 2]
    assert calibration.apply([0.1, 0.45, 0.69, 0.99]).tolist() == [0.0, 1.0, 1.0, 1.0]
    assert calibration.estimate([0.2, 0.8, np.nan]) == 0.5
    assert (calibration.n, calibration.accuracy) == (6, pytest.approx(4 / 6))
    assert Calibration.from_json(calibration.to_json()) == calibration


def test_equal_confidences_share_a_bin() -> None:
    calibration = fit_calibration(
        [0.9, 0.9, 0.9, 0.9, 0.2, 0.3], [1, 0, 1, 1, 0, 1], rows_per_bin=2
    )
    # Cuts after the 2nd and 4th row: the 4th and 5th are both 0.9, so that cut is dropped.
    assert calibration.edges == pytest.approx([0.0, 0.6, 1.0])
    assert calibration.counts == [2, 4]
    assert calibration.values == [0.5, 0.75]


def test_bin_count_keeps_rows_per_bin_and_a_ceiling() -> None:
    assert [bin_count(n) for n in (1, 150, 250, 700, 100_000)] == [1, 1, 2, 7, 25]


def test_the_calibrations_own_error_weighs_the_windows_bins() -> None:
    calibration = Calibration(
        edges=[0.0, 0.5, 1.0], values=[0.5, 1.0], counts=[8, 2], n=10, accuracy=0.6,
        mean_confidence=0.6,
    )  # fmt: skip
    # All the window in bin 0: smoothed (0.5 * 8 + 1) / 10 = 0.5, variance 0.25 / 8.
    assert calibration.variance([0.1, 0.2]) == pytest.approx(0.25 / 8)
    # Half in each: 0.25 * 0.25 / 8 + 0.25 * (3/4 * 1/4) / 2 (bin 1 smoothed to 3/4).
    assert calibration.variance([0.1, 0.9]) == pytest.approx(0.25 * 0.25 / 8 + 0.25 * 0.1875 / 2)


def test_a_calibration_saved_before_binning_still_reads() -> None:
    old = {"x": [0.2, 0.6], "y": [0.3, 0.9], "n": 10, "accuracy": 0.6, "mean_confidence": 0.5}
    calibration = Calibration.from_json(json.dumps(old))
    assert calibration.edges == pytest.approx([0.0, 0.4, 1.0])
    assert calibration.apply([0.1, 0.7]).tolist() == [0.3, 0.9]
    assert calibration.counts == [5, 5]


REFERENCE = pd.DataFrame(
    {
        "label": ["a", "a", "b", "b", "a"],
        "true_label": ["a", "b", "b", "b", "a"],
        "score": [0.9, 0.6, 0.8, 0.7, 0.99],
        "outputs": [True, True, True, False, True],  # row 3 is not held out
    }
)


def test_calibration_rows_are_the_held_out_rows_and_the_feedback() -> None:
    feedback = pd.DataFrame(
        {"id": ["p1", "p2"], "label": ["a", "b"], "score": [0.5, np.nan], "true_label": ["a", "z"]}
    )
    rows = labelled_rows(REFERENCE, feedback)
    assert rows["key"].tolist() == [
        "reference:0",
        "reference:1",
        "reference:2",
        "reference:4",
        "p1",
    ]
    assert rows["correct"].tolist() == [True, False, True, True, True]
    assert rows["feedback"].tolist() == [False, False, False, False, True]
    assert len(labelled_rows(REFERENCE)) == 4


def test_a_window_row_with_feedback_never_calibrates_itself() -> None:
    keys = [f"p{i}" for i in range(40)]
    folds = fold_of(keys)
    labelled = pd.DataFrame(
        {"key": keys, "score": 0.9, "correct": np.arange(40) % 4 != 0, "feedback": True}
    )
    # A window of two rows: one of the labelled rows, and one without feedback.
    window = pd.DataFrame({"id": ["p0", "new"], "score": [0.9, 0.9]})
    expected, full = cross_fitted(labelled, window)
    assert full is not None
    assert expected[1] == pytest.approx(30 / 40)  # every labelled row: 30 of 40 right
    others = labelled[folds != folds[0]]
    assert expected[0] == pytest.approx(others["correct"].mean())
    assert expected[0] != pytest.approx(30 / 40)  # p0 is a miss: leaving it out shows


def test_a_row_whose_fold_holds_every_label_is_left_out() -> None:
    labelled = pd.DataFrame({"key": ["p0"], "score": [0.8], "correct": [True], "feedback": True})
    window = pd.DataFrame({"id": ["p0", "new"], "score": [0.8, 0.8]})
    expected, _ = cross_fitted(labelled, window)
    assert np.isnan(expected[0])
    assert expected[1] == 1.0
    found = estimate_window(labelled, window)
    assert (found.value, found.calibration_rows, found.feedback_rows) == (1.0, 1, 1)


def test_the_interval_adds_the_windows_spread_and_the_calibrations_error() -> None:
    labelled = pd.DataFrame(
        {"key": [f"r{i}" for i in range(4)], "score": [0.6, 0.7, 0.8, 0.9],
         "correct": [True, False, True, True], "feedback": False}
    )  # fmt: skip
    window = pd.DataFrame({"score": [0.65, 0.85]})
    found = estimate_window(labelled, window)
    # One bin of four rows, three right: g = 0.75 for both rows.
    window_var = 0.75 * 0.25 / 2
    smoothed = (3 + 1) / (4 + 2)
    calibration_var = smoothed * (1 - smoothed) / 4
    assert found.value == pytest.approx(0.75)
    assert found.margin == pytest.approx(1.96 * np.sqrt(window_var + calibration_var))
    assert (found.calibration_rows, found.feedback_rows) == (4, 0)


def test_feedback_narrows_the_interval() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.5, 1.0, 4000)
    correct = rng.uniform(size=4000) < scores
    window = pd.DataFrame({"id": [f"w{i}" for i in range(500)], "score": scores[:500]})
    margins: list[float] = []
    for rows in (200, 1000, 4000):
        labelled = pd.DataFrame(
            {"key": [f"f{i}" for i in range(rows)], "score": scores[:rows],
             "correct": correct[:rows], "feedback": True}
        )  # fmt: skip
        margin = estimate_window(labelled, window).margin
        assert margin is not None
        margins.append(margin)
    assert margins[0] > margins[1] > margins[2]
    g = scores[:500]
    own = 1.96 * np.sqrt((g * (1 - g)).mean() / 500)
    assert margins[2] == pytest.approx(own, rel=0.1)


def test_accuracy_figures_report_the_calibration_rows() -> None:
    rows = pd.DataFrame(
        {"id": ["p1", "p2", "p3"], "label": ["a", "b", "a"], "score": [0.9, 0.8, 0.7],
         "true_label": ["a", None, None]}
    )  # fmt: skip
    feedback = rows.iloc[:1]
    figures = accuracy_figures(rows, labelled_rows(REFERENCE, feedback), ["a", "b"])
    assert (figures.calibration_rows, figures.calibration_feedback_rows) == (5, 1)
    assert figures.labelled_rows == 1
    assert figures.estimated_accuracy is not None


def test_the_rows_behind_the_estimate_are_worded_with_it() -> None:
    assert estimate_words(0.8104, 0.0213, True, calibration_rows=1250) == (
        "0.810 ± 0.021 (calibrated on 1,250 labelled predictions)",
        "",
    )
    assert (
        calibration_words(900, 200)
        == "calibrated on 900 labelled predictions, 200 of them feedback"
    )


def _overconfident(rng: np.random.Generator, rows: int, low: float) -> pd.DataFrame:
    """A model whose confidence overstates its accuracy, most above 0.8: right with
    probability 0.5 below a confidence of 0.8 and 0.95 above it."""
    score = rng.uniform(low, 1.0, rows)
    truly = np.where(score < 0.8, 0.5, 0.95)
    return pd.DataFrame(
        {"key": [f"r{i}" for i in range(rows)], "score": score,
         "correct": rng.uniform(size=rows) < truly, "feedback": False}
    )  # fmt: skip


def test_binning_follows_the_model_where_a_single_scale_cannot() -> None:
    # Calibrated on confidences spread over 0.5-1, judged on a window of confident rows
    # (0.75-1): the relation between confidence and correctness holds, the mix moves.
    rng = np.random.default_rng(3)
    labelled = _overconfident(rng, 20_000, 0.5)
    window = _overconfident(rng, 20_000, 0.75)
    truth = float(window["correct"].mean())
    found = estimate_window(labelled, window)
    assert found.value == pytest.approx(truth, abs=0.015)
    # A single factor that makes the calibration rows' mean confidence match their
    # accuracy (what one temperature or scale can do at best here) is off by 0.05.
    factor = labelled["correct"].mean() / labelled["score"].mean()
    assert abs(window["score"].mean() * factor - truth) > 0.05


def test_the_interval_holds_the_truth_as_often_as_it_claims() -> None:
    # 300 trials: a calibration of 700 held-out rows and a window of 500, both fresh.
    rng = np.random.default_rng(5)
    errors, covered = [], []
    for _ in range(300):
        labelled, window = _overconfident(rng, 700, 0.5), _overconfident(rng, 500, 0.5)
        found = estimate_window(labelled, window.drop(columns="key"))
        assert found.value is not None
        assert found.margin is not None
        errors.append(found.value - window["correct"].mean())
        covered.append(abs(errors[-1]) <= found.margin)
    assert abs(np.mean(errors)) <= 0.005  # no bias of the method's own
    assert 0.93 <= np.mean(covered) <= 0.985
