"""`run_drift_check`: one drift check, from the prediction log to a verdict and its files.

1. The model version (the champion unless named) and its reference profile.
2. The window's rows from the prediction log, for that version only.
3. Accuracy estimated from every row's confidence, calibrated on the reference's
   held-out rows and every feedback label the version received up to the window's end
   (cross-fitted: a window row's own label never calibrates it), and actual accuracy
   over the rows with feedback.
4. Below `drift_min_window_size` rows: "not enough data", and no Evidently report.
5. Otherwise the Evidently report over the reference and the window (sampled down
   to `drift_max_rows`); one result per signal, and drift if any signal drifted.
6. HTML report and JSON summary in `<state_dir>/reports/`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pandas as pd
from evidently.core.report import Snapshot

from refit.core.registry import Registry
from refit.monitoring.drift.estimate import accuracy_figures, estimate_reliable, labelled_rows
from refit.monitoring.drift.features import (
    LOG_COLUMNS,
    feature_frame,
    reference_features,
    sample_rows,
    texts_logged,
)
from refit.monitoring.drift.history import report_paths, reports_dir, write_summary
from refit.monitoring.drift.report import run_report
from refit.monitoring.drift.report_html import evidently_page
from refit.monitoring.drift.report_page import write_report
from refit.monitoring.drift.result import DriftResult
from refit.monitoring.drift.signals import SignalResult, signal_specs, verdict
from refit.monitoring.drift.window import format_window, window_range
from refit.monitoring.prediction_log import PredictionLog, borrowed_log
from refit.monitoring.settings import MonitoringContext
from refit.training.reference import ReferenceProfile

logger = logging.getLogger(__name__)

# Feedback rows the accuracy estimate's calibration reads at most, the newest first.
FEEDBACK_ROWS: Final = 50_000


def run_drift_check(
    settings: MonitoringContext,
    *,
    window: timedelta,
    end: datetime | None = None,
    model_version: str | None = None,
    log: PredictionLog | None = None,
) -> DriftResult:
    """Compare the last `window` of logged predictions (up to `end`, default now) of
    `model_version` (default: the champion) with its reference profile.

    Raises NoReferenceProfile for a version trained before drift checks existed,
    ModelNotFoundError for an unknown version, PredictionLogUnavailable when the log
    cannot be read.
    """
    started = time.perf_counter()
    version = Registry.from_settings(settings.core).get(model_version)
    profile = ReferenceProfile.read(version.path, version=version.version)
    start, stop = window_range(window, end)
    rows, feedback = _read_window(settings, log, start, stop, version.version)
    figures = accuracy_figures(rows, labelled_rows(profile.frame, feedback), version.labels)
    checked_at = datetime.now(UTC).replace(microsecond=0)
    folder = reports_dir(settings.core.resolved_state_dir())
    html_path, json_path = report_paths(folder, checked_at, version.version)
    result = DriftResult(
        status="not_enough_data",
        checked_at=checked_at,
        model_version=version.version,
        window=format_window(window),
        window_start=start,
        window_end=stop,
        window_size=len(rows),
        compared_rows=0,
        reference_rows=len(profile.frame),
        **dataclasses.asdict(figures),  # the same field names
        json_path=json_path,
        message=f"not enough data: {len(rows)} predictions in the window, at least "
        f"{settings.drift.drift_min_window_size} needed for a verdict",
    )
    snapshot = None
    if len(rows) >= settings.drift.drift_min_window_size:
        current = sample_rows(rows, settings.drift.drift_max_rows, settings.training.seed)
        del rows  # a million-row window need not stay in memory during the report
        snapshot, result = _compare(settings, profile, current, result, html_path)
    result = dataclasses.replace(result, seconds=round(time.perf_counter() - started, 3))
    if snapshot is not None:
        write_report(evidently_page(snapshot), result, html_path)
    write_summary(result, folder)
    logger.info("drift check of %s: %s", version.tag, result.message)
    return result


def _read_window(
    settings: MonitoringContext,
    log: PredictionLog | None,
    start: datetime,
    stop: datetime,
    version: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the window's rows, the newest `FEEDBACK_ROWS` rows of the version with feedback
    logged before the window's end)."""
    with borrowed_log(settings, log) as reader:
        rows = reader.read(
            start, stop, model_version=version, columns=["id", *LOG_COLUMNS, "true_label"]
        )
        feedback = reader.read(
            0,
            stop,
            model_version=version,
            columns=["id", "label", "score", "true_label"],
            labelled_only=True,
            newest=FEEDBACK_ROWS,
        )
        return rows, feedback


def _compare(
    settings: MonitoringContext,
    profile: ReferenceProfile,
    current: pd.DataFrame,
    result: DriftResult,
    html_path: Path,
) -> tuple[Snapshot | None, DriftResult]:
    """The Evidently snapshot of a large enough window, and `result` completed with its
    signals and verdict (the HTML report is written once the result is final)."""
    snapshot, signals = compare(settings, profile, current)
    status = verdict(signals, result.window_size, settings.drift.drift_min_window_size)
    drifted = [signal.name for signal in signals if signal.drifted]
    return snapshot, dataclasses.replace(
        result,
        status=status,
        estimate_reliable=estimate_reliable(drifted),
        compared_rows=len(current),
        signals=signals,
        html_path=html_path if snapshot is not None else None,
        message=describe(status, signals, len(current), result.window_size),
    )


def compare(
    settings: MonitoringContext, profile: ReferenceProfile, current: pd.DataFrame
) -> tuple[Snapshot | None, list[SignalResult]]:
    """Every signal of log rows `current` against `profile`: the Evidently snapshot
    (None when no signal could be computed) and one result per signal."""
    reference = reference_features(profile.frame, settings.monitoring.log_text)
    skipped = {}
    if not texts_logged(current):
        skipped["text"] = "texts are not logged (REFIT_LOG_TEXT=hashed)"
    return run_report(signal_specs(settings), reference, feature_frame(current), skipped)


def describe(status: str, signals: list[SignalResult], compared: int, window_size: int) -> str:
    """One line for logs and the CLI: the verdict, the drifted signals and any sampling."""
    drifted = [signal.name for signal in signals if signal.drifted]
    if status == "drift":
        line = f"drift in {', '.join(drifted)}"
    elif status == "ok":
        line = "no drift"
    else:
        line = "no signal could be computed"
    if compared < window_size:
        line += f" (compared a uniform sample of {compared} of {window_size} predictions)"
    return line
