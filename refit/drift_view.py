"""Terminal rendering of drift checks, for `refit drift` and `refit reports`.

Cells fold rather than end in an ellipsis on a narrow terminal, so versions and file
names stay whole (and in a file or a pipe nothing is narrowed at all).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from refit.monitoring.drift.result import DriftResult
from refit.monitoring.drift.signals import SignalResult, drift_number

_VERDICT = {"ok": "no drift", "drift": "[red]DRIFT[/red]", "not_enough_data": "not enough data"}


def _drifted(signal: SignalResult) -> str:
    if signal.drifted is None:
        return "-"
    return "[red]yes[/red]" if signal.drifted else "no"


def signals_table(result: DriftResult) -> Table:
    table = Table(title=f"drift signals, model version {result.model_version}")
    for header in ("signal", "method", "value", "threshold", "score", "drifted", "note"):
        table.add_column(
            header,
            justify="left" if header in ("signal", "method", "note") else "right",
            overflow="fold",
        )
    for signal in result.signals:
        table.add_row(
            signal.name,
            signal.method,
            drift_number(signal.value),
            drift_number(signal.threshold),
            drift_number(signal.score, 2),
            _drifted(signal),
            signal.note,
        )
    return table


def estimate_text(result: DriftResult) -> str:
    """The label-free estimate with its 95% interval, and why not to trust it when so."""
    if result.estimated_accuracy is None:
        return "-"
    text, why = result.estimate_words()
    return f"{text} ({why})" if why else text


def summary_lines(result: DriftResult) -> list[str]:
    """Verdict, window, accuracy figures and file paths, one per line."""
    lines = [
        f"verdict: {_VERDICT.get(result.status, result.status)} - {result.message}",
        f"window: {result.window} ({result.window_start:%Y-%m-%d %H:%M} to "
        f"{result.window_end:%Y-%m-%d %H:%M} UTC), {result.window_size} predictions, "
        f"{result.compared_rows} compared with {result.reference_rows} reference rows",
        f"estimated accuracy (from confidence): {estimate_text(result)}",
    ]
    if result.calibration_rows:
        lines.append(
            f"calibration: {result.calibration_rows} labelled predictions, "
            f"{result.calibration_feedback_rows} of them feedback "
            f"({result.calibration_rows - result.calibration_feedback_rows} held out at "
            "training)"
        )
    if result.labelled_rows:
        lines.append(
            f"actual accuracy: {drift_number(result.actual_accuracy)}, macro-F1 "
            f"{drift_number(result.actual_macro_f1)} (on {result.labelled_rows} predictions "
            "with feedback)"
        )
    else:
        lines.append("actual accuracy: no feedback in the window")
    if result.html_path is not None:
        lines.append(f"report: {result.html_path}")
    lines.append(f"summary: {result.json_path}")
    return lines


def runs_table(runs: Sequence[DriftResult]) -> Table:
    folder = next((run.json_path.parent for run in runs if run.json_path is not None), None)
    table = Table(title="drift checks, newest first", caption=f"reports in {folder}")
    for header in ("checked (UTC)", "version", "window", "size", "verdict", "drifted signals",
                   "est. acc."):  # fmt: skip
        table.add_column(header, overflow="fold")
    table.add_column("report", overflow="fold")
    for run in runs:
        table.add_row(
            f"{run.checked_at:%Y-%m-%d %H:%M:%S}",
            run.model_version,
            run.window,
            str(run.window_size),
            _VERDICT.get(run.status, run.status),
            ", ".join(run.drifted_signals) or "-",
            drift_number(run.estimated_accuracy),
            _file_name(run),
        )
    return table


def _file_name(run: DriftResult) -> str:
    path = run.html_path or run.json_path
    return "-" if path is None else path.name
