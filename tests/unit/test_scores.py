"""Metrics against hand-computed expectations on tiny inputs."""

from __future__ import annotations

import warnings

import pytest

from refit.training.scores import (
    classification_metrics,
    evaluate_predictions,
    expected_calibration_error,
    length_bucket,
)

LABELS = ["a", "b", "c"]
# Confusion matrix by hand (rows true, columns predicted):
#   a: [2, 1, 0]   b: [0, 1, 1]   c: [0, 0, 1]
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]


def test_three_class_case_matches_hand_computation():
    m = classification_metrics(Y_TRUE, Y_PRED, [0.9] * 6, LABELS)

    assert m.n == 6
    assert m.labels == LABELS
    assert m.confusion_matrix == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m.accuracy == pytest.approx(4 / 6)
    # a: P=2/2, R=2/3, F1=0.8 | b: P=1/2, R=1/2, F1=0.5 | c: P=1/2, R=1, F1=2/3
    assert m.per_class["a"].precision == pytest.approx(1.0)
    assert m.per_class["a"].recall == pytest.approx(2 / 3)
    assert m.per_class["a"].f1 == pytest.approx(0.8)
    assert m.per_class["b"].precision == pytest.approx(0.5)
    assert m.per_class["b"].recall == pytest.approx(0.5)
    assert m.per_class["b"].f1 == pytest.approx(0.5)
    assert m.per_class["c"].precision == pytest.approx(0.5)
    assert m.per_class["c"].recall == pytest.approx(1.0)
    assert m.per_class["c"].f1 == pytest.approx(2 / 3)
    assert [m.per_class[x].support for x in LABELS] == [3, 2, 1]
    assert m.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)  # 59/90
    assert m.micro_f1 == pytest.approx(4 / 6)
    assert m.weighted_f1 == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)  # 61/90
    # One bin holds everything: |accuracy - confidence| = 0.9 - 2/3.
    assert m.ece == pytest.approx(0.9 - 4 / 6)


def test_ece_two_bins_by_hand():
    # Bin [0, .5): conf .3, .4, one of two correct -> |0.5 - 0.35| * 2/4 = 0.075
    # Bin [.5, 1]: conf .8, .9, both correct      -> |1.0 - 0.85| * 2/4 = 0.075
    ece = expected_calibration_error([0.3, 0.4, 0.8, 0.9], [False, True, True, True], n_bins=2)
    assert ece == pytest.approx(0.15)


def test_ece_puts_confidence_one_in_last_bin():
    # Both in [.5, 1]: accuracy 0.5, mean confidence 0.8 -> 0.3. Had 1.0 a bin of its
    # own the answer would be 0.5 * 1 + 0.5 * 0.4 = 0.7; had it been dropped, 0.2.
    assert expected_calibration_error([1.0, 0.6], [False, True], n_bins=2) == pytest.approx(0.3)
    # 0.5 is a lower bin edge, so it shares the last bin with 1.0: |0.5 - 0.75| = 0.25.
    assert expected_calibration_error([1.0, 0.5], [False, True], n_bins=2) == pytest.approx(0.25)


def test_ece_perfectly_calibrated_is_zero():
    confidence = [0.75] * 8 + [1.0] * 4
    correct = [True, True, True, False] * 2 + [True] * 4
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0, abs=1e-12)


def test_ece_empty_input_raises():
    with pytest.raises(ValueError, match="zero predictions"):
        expected_calibration_error([], [])


def test_ece_rejects_out_of_range_confidence():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([1.2], [True])


def test_labels_missing_from_data_do_not_warn_or_drag_macro_down():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(["a", "a"], ["a", "a"], [1.0, 1.0], LABELS)
    assert m.per_class["c"].support == 0
    assert m.per_class["c"].f1 == 0.0
    assert m.macro_f1 == pytest.approx(1.0)
    assert m.weighted_f1 == pytest.approx(1.0)
    assert m.confusion_matrix == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_predicted_label_outside_labels_counts_as_wrong():
    m = classification_metrics(["a", "b", "b"], ["a", "zzz", "b"], [0.9] * 3, ["a", "b"])
    assert m.accuracy == pytest.approx(2 / 3)
    assert m.micro_f1 == pytest.approx(2 / 3)
    assert m.per_class["b"].recall == pytest.approx(0.5)
    assert m.per_class["b"].precision == pytest.approx(1.0)
    assert m.confusion_matrix == [[1, 0], [0, 1]]


def test_true_label_outside_labels_raises():
    with pytest.raises(ValueError, match="not in labels"):
        classification_metrics(["x"], ["a"], [0.5], ["a", "b"])


def test_empty_metrics_raise():
    with pytest.raises(ValueError, match="zero predictions"):
        classification_metrics([], [], [], LABELS)


def test_length_bucket_boundaries():
    texts = ["", "w " * 8, "w " * 9, "w " * 30, "w " * 31, "w " * 80, "w " * 81]
    assert length_bucket(texts) == [
        "1-8 words",
        "1-8 words",
        "9-30 words",
        "9-30 words",
        "31-80 words",
        "31-80 words",
        "81+ words",
    ]


def _channel_data() -> tuple[list[str], list[str], list[str]]:
    """email: 30 all right; chat: 24 with half wrong; fax: 4 all wrong (small)."""
    y_true, y_pred, channel = [], [], []
    for i in range(30):
        label = "a" if i % 2 else "b"
        y_true.append(label)
        y_pred.append(label)
        channel.append("email")
    for i in range(24):
        y_true.append("a" if i % 2 else "b")
        y_pred.append("a")
        channel.append("chat")
    for _ in range(4):
        y_true.append("a")
        y_pred.append("b")
        channel.append("fax")
    return y_true, y_pred, channel


def test_weak_slice_found_and_small_slice_excluded():
    y_true, y_pred, channel = _channel_data()
    report = evaluate_predictions(
        y_true, y_pred, [0.8] * len(y_true), ["a", "b"], slices={"channel": channel}
    )
    by_value = {s.value: s for s in report.slices}
    assert set(by_value) == {"email", "chat", "fax"}
    assert by_value["fax"].small
    assert by_value["fax"].metrics.accuracy == 0.0
    assert not by_value["chat"].small
    assert by_value["email"].metrics.macro_f1 == pytest.approx(1.0)
    # chat: a has P=1/2, R=1, F1=2/3; b has F1=0 -> macro 1/3.
    assert by_value["chat"].metrics.macro_f1 == pytest.approx(1 / 3)
    assert [s.value for s in report.weakest_slices] == ["chat"]
    assert report.overall.n == 58


def test_weakest_slices_sorted_worst_first():
    y_true, y_pred, channel = _channel_data()
    report = evaluate_predictions(
        y_true, y_pred, [0.8] * 58, ["a", "b"], slices={"channel": channel}, min_slice_size=1
    )
    # fax: a has F1 0, b is predicted without support so F1 0 too -> macro 0.0 < chat's 1/3.
    assert [s.value for s in report.weakest_slices] == ["fax", "chat"]
    assert report.weakest_slices[0].metrics.macro_f1 == pytest.approx(0.0)


def test_slice_values_are_stringified_and_gap_respected():
    y_true, y_pred, _ = _channel_data()
    # Group 1: all 30 email rows, right; group 2: the 28 chat and fax rows.
    group = [1] * 30 + [2] * 28
    report = evaluate_predictions(y_true, y_pred, [0.8] * 58, ["a", "b"], slices={"g": group})
    assert [s.value for s in report.slices] == ["1", "2"]
    assert [s.value for s in report.weakest_slices] == ["2"]
    huge_gap = evaluate_predictions(
        y_true, y_pred, [0.8] * 58, ["a", "b"], slices={"g": group}, gap=0.9
    )
    assert huge_gap.weakest_slices == []


def test_slice_missing_a_label_still_has_all_classes():
    report = evaluate_predictions(
        ["a", "b", "c", "a"],
        ["a", "b", "c", "a"],
        [1.0] * 4,
        LABELS,
        slices={"src": ["x", "y", "y", "x"]},
        min_slice_size=1,
    )
    x = next(s for s in report.slices if s.value == "x")
    assert set(x.metrics.per_class) == set(LABELS)
    assert x.metrics.per_class["b"].support == 0
    assert x.metrics.macro_f1 == pytest.approx(1.0)
    assert report.weakest_slices == []


def test_length_slices_in_natural_order():
    texts = ["w " * 40, "one", "w " * 12, "w " * 100]
    report = evaluate_predictions(
        ["a"] * 4, ["a"] * 4, [1.0] * 4, ["a"], slices={"length": length_bucket(texts)}
    )
    assert [s.value for s in report.slices] == [
        "1-8 words",
        "9-30 words",
        "31-80 words",
        "81+ words",
    ]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"y_pred": ["a"]}, "y_pred"),
        ({"confidence": [0.5]}, "confidence"),
        ({"slices": {"channel": ["x"]}}, r"slices\['channel'\]"),
    ],
)
def test_length_mismatch_names_the_argument(kwargs, name):
    args = {"y_true": ["a", "b"], "y_pred": ["a", "b"], "confidence": [0.5, 0.5]} | kwargs
    slices = args.pop("slices", None)
    with pytest.raises(ValueError, match=name):
        evaluate_predictions(labels=["a", "b"], slices=slices, **args)


def test_truth_macro_f1_leaves_out_labels_only_predicted() -> None:
    from refit.training.scores import scores_with_new_labels

    m = scores_with_new_labels(["a", "a", "b", "b"], ["a", "new", "b", "b"], ["a", "b", "new"])
    assert m.macro_f1 == pytest.approx((2 / 3 + 1 + 0) / 3)  # "new" counted at F1 0
    assert m.truth_macro_f1 == pytest.approx((2 / 3 + 1) / 2)
