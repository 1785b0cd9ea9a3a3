"""The pure pieces of drift checks on tiny hand-made inputs, with hand-computed answers."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from drift_summaries import drift_result
from prometheus_client.parser import text_string_to_metric_families

from refit.core.descriptors import char_counts, descriptor_frame, pack_embeddings, unpack_embeddings
from refit.monitoring.drift.estimate import actual_figures
from refit.monitoring.drift.export import LatestSummary, drift_exposition
from refit.monitoring.drift.features import (
    EMBEDDING_COLUMNS,
    FEATURE_COLUMNS,
    feature_frame,
    reference_features,
    sample_rows,
)
from refit.monitoring.drift.history import LATEST, list_runs, write_summary
from refit.monitoring.drift.report import run_report
from refit.monitoring.drift.result import DriftResult
from refit.monitoring.drift.signals import SignalResult, SignalSpec, evaluate, oriented, verdict
from refit.monitoring.drift.stattests import homogeneity_p_value
from refit.monitoring.drift.window import format_window, parse_window, window_range
from refit.retraining.watch_state import state_path
from refit.service.settings import Settings

# --- descriptors --------------------------------------------------------------------


def test_character_counts_of_known_strings() -> None:
    counts = char_counts(["Hello, World 42!", "", "ÉCOLE — ٣½", "a\ud800b"])
    # chars, digits (Nd), uppercase (Lu), punctuation and symbols (P*, S*)
    assert counts.tolist() == [
        [16, 2, 2, 2],  # H W / 4 2 / , !
        [0, 0, 0, 0],
        [10, 1, 5, 1],  # É C O L E / Arabic-Indic three (½ is No, not a digit) / em dash
        [3, 0, 0, 0],  # a lone surrogate is a character of no class
    ]


def test_descriptors_from_counts() -> None:
    frame = descriptor_frame(
        np.array([[16, 2, 2, 2], [0, 0, 0, 0], [4, 1, 0, 1]]),
        n_tokens=np.array([8, 2, 0]),
        n_unknown=np.array([2, 0, 0]),
    )
    assert frame.to_dict("list") == {
        "n_chars": [16.0, 0.0, 4.0],
        "n_tokens": [8.0, 2.0, 0.0],
        "unknown_rate": [0.25, 0.0, 0.0],
        "digit_share": [0.125, 0.0, 0.25],
        "upper_share": [0.125, 0.0, 0.0],
        "punct_share": [0.125, 0.0, 0.25],
    }


def test_missing_counts_stay_missing() -> None:
    frame = descriptor_frame(np.full((1, 4), np.nan), np.array([5]), np.array([np.nan]))
    assert frame.drop(columns="n_tokens").isna().all(axis=None)


def test_embeddings_round_trip_through_64_bytes() -> None:
    values = np.arange(64, dtype=np.float32).reshape(2, 32) / 8
    blobs = pack_embeddings(values)
    assert [len(b) for b in blobs] == [64, 64]
    unpacked = unpack_embeddings([blobs[0], None, b"short", blobs[1]])
    assert np.array_equal(unpacked[[0, 3]], values)  # eighths are exact in float16
    assert np.isnan(unpacked[[1, 2]]).all()


def test_feature_frame_of_log_rows() -> None:
    rows = pd.DataFrame(
        {
            "label": ["billing", "shipping"],
            "score": [0.9, 0.6],
            "text": ["Refund 2!", None],
            "n_tokens": [5, 3],
            "n_unknown": [1, np.nan],
            "n_chars": [9, np.nan],
            "n_digits": [1, np.nan],
            "n_upper": [1, np.nan],
            "n_punct": [1, np.nan],
            "embedding": [pack_embeddings(np.ones((1, 32)))[0], None],
        }
    )
    features = feature_frame(rows)
    assert tuple(features.columns) == FEATURE_COLUMNS
    assert features.loc[0, ["n_chars", "unknown_rate", "digit_share"]].tolist() == [9, 0.2, 1 / 9]
    assert features.loc[1, ["n_chars", "unknown_rate"]].isna().all()
    assert features["predicted_label"].tolist() == ["billing", "shipping"]
    assert features.loc[0, list(EMBEDDING_COLUMNS)].eq(1.0).all()
    assert features.loc[1, list(EMBEDDING_COLUMNS)].isna().all()


def test_reference_features_take_each_side_from_its_own_sample() -> None:
    profile = pd.DataFrame(
        {
            "label": ["billing", "shipping"],
            "score": [0.9, 0.6],
            "text": ["Mail bob@example.com", "hi"],
            "n_tokens": [5, 3],
            "n_unknown": [0, 0],
            "n_chars": [20, 2],
            "n_digits": [0, 0],
            "n_upper": [1, 0],
            "n_punct": [2, 0],
            "embedding": pack_embeddings(np.ones((2, 32))),
            "inputs": [True, False],  # texts: first row only
            "outputs": [False, True],  # model outputs: second row only
        }
    )
    features = reference_features(profile, "redacted")
    assert features["text"].tolist() == ["Mail <email>", None]  # masked like the log
    assert features["n_chars"].tolist()[0] == 20
    assert np.isnan(features["n_chars"].tolist()[1])
    assert features["predicted_label"].tolist() == [None, "shipping"]
    assert np.isnan(features.loc[0, "confidence"])
    assert features.loc[0, list(EMBEDDING_COLUMNS)].isna().all()
    assert features.loc[1, list(EMBEDDING_COLUMNS)].eq(1.0).all()


def test_sampling_is_bounded_reproducible_and_ordered() -> None:
    frame = pd.DataFrame({"x": range(100)})
    assert sample_rows(frame, 200, seed=1) is frame
    first, again = sample_rows(frame, 10, seed=1), sample_rows(frame, 10, seed=1)
    assert len(first) == 10
    assert first.equals(again)
    assert first["x"].is_monotonic_increasing


# --- signals and verdict ---------------------------------------------------------------


def test_scores_are_oriented_so_that_higher_is_more_drift() -> None:
    assert oriented(0.001, p_value=True) == pytest.approx(3.0)
    assert oriented(1.0, p_value=True) == 0.0
    assert oriented(0.0, p_value=True) == pytest.approx(300.0)  # underflow stays finite
    assert oriented(0.71, p_value=False) == 0.71


def test_p_values_drift_below_and_distances_above_their_threshold() -> None:
    ks = SignalSpec("n_chars", "n_chars", "numeric", "ks", 0.01)
    auc = SignalSpec("text", "text", "text", "abs_text_content_drift", 0.6)
    assert evaluate(ks, 0.001).drifted is True
    assert evaluate(ks, 0.2).drifted is False
    assert evaluate(ks, 0.001).score == pytest.approx(3.0)
    assert evaluate(ks, 0.001).score_threshold == pytest.approx(2.0)
    assert evaluate(auc, 0.7).drifted is True
    assert evaluate(auc, 0.5).drifted is False
    missing = evaluate(auc, None, "texts are not logged")
    assert (missing.drifted, missing.score, missing.note) == (None, None, "texts are not logged")
    assert evaluate(ks, math.nan).drifted is None


def _result(name: str, drifted: bool | None) -> SignalResult:
    return SignalResult(name, "numeric", "ks", 0.5, 0.01, 0.3, 2.0, drifted)


def test_verdict_is_drift_when_any_computed_signal_drifts() -> None:
    calm, moved, skipped = _result("a", False), _result("b", True), _result("c", None)
    assert verdict([calm, skipped], 500, 200) == "ok"
    assert verdict([calm, moved, skipped], 500, 200) == "drift"
    assert verdict([calm, moved], 199, 200) == "not_enough_data"
    assert verdict([skipped], 500, 200) == "not_enough_data"
    assert verdict([], 500, 200) == "not_enough_data"


def test_evidently_ks_and_chi_square_on_hand_made_samples() -> None:
    reference = pd.DataFrame({"x": np.arange(20.0), "c": ["a"] * 10 + ["b"] * 10})
    current = pd.DataFrame({"x": np.arange(20.0, 40.0), "c": ["a"] * 20})
    reference["c2"], current["c2"] = reference["c"], current["c"]  # one method per column
    specs = [
        SignalSpec("x", "x", "numeric", "ks", 0.001),
        SignalSpec("c", "c", "categorical", "chisquare", 0.001),
        SignalSpec("c2", "c2", "categorical", "chi2_homogeneity", 0.001),
    ]
    _, (ks, fit, homogeneity) = run_report(specs, reference, current)
    # Fully separated samples of 20 and 20: the exact two-sided K-S p-value is the
    # chance of that order, 2 / C(40, 20).
    assert ks.value == pytest.approx(2 / math.comb(40, 20))
    assert ks.drifted is True
    # Evidently's goodness of fit: expected 10 a and 10 b, observed 20 and 0:
    # chi2 = 10 + 10 = 20 on 1 degree of freedom, p = erfc(sqrt(20 / 2)).
    assert fit.value == pytest.approx(math.erfc(math.sqrt(10)))
    # Homogeneity of [[10, 10], [20, 0]]: expected [[15, 5], [15, 5]], chi2 =
    # 2 * 25/15 + 2 * 25/5 = 40/3 on 1 degree of freedom: the reference's own
    # noise counted, a larger p-value than the goodness of fit's.
    assert homogeneity.value == pytest.approx(math.erfc(math.sqrt(20 / 3)))
    assert homogeneity.drifted is True


def test_homogeneity_edge_cases() -> None:
    one = pd.Series(["a"] * 5)
    assert homogeneity_p_value(one, one) == 1.0
    assert homogeneity_p_value(pd.Series(["a", "b"] * 50), pd.Series(["b", "a"] * 50)) == 1.0
    assert math.isnan(homogeneity_p_value(pd.Series(["a", "b"]), pd.Series([], dtype=object)))


def test_too_few_rows_are_not_computed() -> None:
    reference = pd.DataFrame({"x": np.arange(30.0)})
    current = pd.DataFrame({"x": [1.0] * 5 + [np.nan] * 30})
    snapshot, (result,) = run_report(
        [SignalSpec("x", "x", "numeric", "ks", 0.01)], reference, current
    )
    assert snapshot is None
    assert result.drifted is None
    assert "too few rows" in result.note


# --- accuracy ----------------------------------------------------------------------------


def test_actual_accuracy_and_macro_f1_over_labelled_rows() -> None:
    predicted = pd.Series(["a", "a", "b", "b", "a"])
    true = pd.Series(["a", "b", "b", None, "c"])
    accuracy, macro_f1, labelled = actual_figures(predicted, true, ["a", "b"])
    assert labelled == 4
    assert accuracy == 0.5
    # a: precision 1/3, recall 1 -> F1 0.5; b: precision 1, recall 1/2 -> F1 2/3;
    # c (a label the model lacks): F1 0.
    assert macro_f1 == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert actual_figures(predicted, pd.Series([None] * 5), ["a"]) == (None, None, 0)


# --- windows, files and gauges -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("1h", timedelta(hours=1)), ("2d", timedelta(days=2)),
     ("1w", timedelta(weeks=1)), (" 90M ", timedelta(minutes=90)), ("10s", timedelta(seconds=10))],
)  # fmt: skip
def test_window_strings(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "1", "0h", "1.5h", "1y", "h", "-1h"])
def test_bad_window_strings_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="whole number"):
        parse_window(text)


def test_window_formatting_and_range() -> None:
    assert [format_window(timedelta(minutes=m)) for m in (30, 60, 90, 1440, 10080)] == [
        "30m", "1h", "90m", "1d", "1w",
    ]  # fmt: skip
    start, end = window_range(timedelta(hours=1), datetime(2026, 1, 1, 12))
    assert (start, end) == (
        datetime(2026, 1, 1, 11, tzinfo=UTC),
        datetime(2026, 1, 1, 12, tzinfo=UTC),
    )


def make_result(folder: Path, when: datetime, status: str = "drift") -> DriftResult:
    return drift_result(
        folder,
        when,
        status=status,
        rows=500,
        reference_rows=3000,
        signals=[
            SignalResult("n_chars", "numeric", "ks", 1e-5, 0.001, 5.0, 3.0, True),
            SignalResult("text", "text", "abs_text_content_drift", 0.52, 0.6, 0.52, 0.6, False),
            SignalResult("embedding", "embedding", "model", None, 0.6, None, 0.6, None, "n/a"),
        ],
        estimated_accuracy=0.9,
        calibration_rows=1200,
        calibration_feedback_rows=500,
    )


def test_summaries_round_trip_and_list_newest_first(tmp_path: Path) -> None:
    first = make_result(tmp_path, datetime(2026, 1, 1, 10, tzinfo=UTC))
    second = make_result(tmp_path, datetime(2026, 1, 1, 11, tzinfo=UTC), status="ok")
    for result in (first, second):
        write_summary(result, tmp_path)
    (tmp_path / "drift-20260101T120000Z-v1.json").write_text("{not json")
    assert first.json_path is not None
    assert first.json_path.name == "drift-20260101T100000Z-v1.json"
    assert list_runs(tmp_path) == [second, first]
    assert list_runs(tmp_path, limit=1) == [second]
    assert json.loads((tmp_path / LATEST).read_text())["status"] == "ok"
    assert json.loads(first.json_path.read_text())["drifted_signals"] == ["n_chars"]


def test_gauges_from_a_summary(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert (
        drift_exposition(settings.core.resolved_state_dir(), state_path(settings.core)) == ""
    )  # no check yet
    when = datetime(2026, 1, 1, 10, tzinfo=UTC)
    write_summary(make_result(tmp_path / "reports", when), tmp_path / "reports")
    samples = {
        (s.name, s.labels.get("signal")): s.value
        for family in text_string_to_metric_families(
            drift_exposition(settings.core.resolved_state_dir(), state_path(settings.core))
        )
        for s in family.samples
    }
    assert samples == {
        ("refit_drift_score", "n_chars"): 5.0,
        ("refit_drift_threshold", "n_chars"): 3.0,
        ("refit_drift_score", "text"): 0.52,
        ("refit_drift_threshold", "text"): 0.6,
        ("refit_drift_detected", None): 1.0,
        ("refit_drift_estimated_accuracy", None): 0.9,
        ("refit_drift_estimate_reliable", None): 1.0,
        ("refit_drift_estimate_calibration_rows", None): 1200.0,
        ("refit_drift_estimate_calibration_feedback_rows", None): 500.0,
        ("refit_drift_window_size", None): 500.0,
        ("refit_drift_last_check_timestamp_seconds", None): when.timestamp(),
    }


def test_latest_summary_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / LATEST
    source = LatestSummary(tmp_path)
    assert source.get() is None
    path.write_text('{"status": "ok"}')
    assert source.get() == {"status": "ok"}
    stamp = time.time() - 10
    os.utime(path, (stamp, stamp))
    first = source.get()
    assert source.get() is first  # unchanged: the parsed object is reused
    path.write_text('{"status": "drift"}')
    assert source.get() == {"status": "drift"}
    path.write_text("{broken")
    assert source.get() is None  # unreadable: no gauges rather than a failed scrape


def test_a_signal_evidently_cannot_compute_spares_the_others() -> None:
    # Every word a stop word: the text domain classifier has no vocabulary to fit.
    reference = pd.DataFrame({"x": np.arange(30.0), "text": ["the and of"] * 30})
    current = pd.DataFrame({"x": np.arange(30.0) + 100, "text": ["of the and"] * 30})
    specs = [
        SignalSpec("x", "x", "numeric", "ks", 0.001),
        SignalSpec("text", "text", "text", "abs_text_content_drift", 0.6),
    ]
    snapshot, (numeric, text) = run_report(specs, reference, current)
    assert snapshot is not None
    assert numeric.drifted is True
    assert text.drifted is None
    assert "Evidently failed" in text.note


def test_drift_numbers_read_the_same_in_the_cli_and_the_report() -> None:
    from refit.monitoring.drift.signals import drift_number

    assert drift_number(0.04567) == "0.046"
    assert drift_number(2e-9) == "2.0e-09"  # not 0.000
    assert drift_number(0.0) == "0.000"
    assert drift_number(0.734, 2) == "0.73"
    assert drift_number(None) == "-"
    assert drift_number(None, missing="–") == "–"
