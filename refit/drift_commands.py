"""`refit drift` and `refit reports`: check recent predictions, list past checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from refit.console import JsonOption, console, err, print_json, settings_from_env

if TYPE_CHECKING:
    from refit.monitoring.drift.result import DriftResult


def drift(
    window: Annotated[
        str | None,
        typer.Option(help="Recent predictions to compare: 30m, 1h, 2d, 1w (REFIT_DRIFT_WINDOW)."),
    ] = None,
    model_version: Annotated[
        str | None,
        typer.Option(help="Model version whose predictions to check (default: champion)."),
    ] = None,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit with status 3 when drift is found (cron).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare recent predictions with the model's training-time reference profile.

    --json prints the summary the check wrote beside its HTML report (json_path), the
    same figures the report shows: {"status" ("ok", "drift" or "not_enough_data"),
    "checked_at", "window_start", "window_end" (ISO 8601, UTC), "model_version", "window",
    "window_size", "compared_rows", "reference_rows", "signals": [{"name", "kind",
    "method", "value", "threshold", "score", "score_threshold", "drifted", "note"}],
    "estimated_accuracy", "estimated_margin" (half-width of its 95% interval),
    "calibration_rows" (labelled predictions its calibration used),
    "calibration_feedback_rows" (of them, feedback), "estimate_reliable",
    "actual_accuracy", "actual_macro_f1", "labelled_rows",
    "html_path", "json_path", "seconds", "message", "drifted_signals"}; figures a check
    could not compute are null.
    """
    from refit.monitoring.drift.check import run_drift_check
    from refit.monitoring.drift.window import parse_window

    settings = settings_from_env(drift_window=window)
    try:
        span = parse_window(settings.drift.drift_window)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    result = run_drift_check(settings, window=span, model_version=model_version)
    if as_json:
        print_json(result.to_dict())
    else:
        _print_result(result)
    if fail_on_drift and result.drifted:
        raise typer.Exit(3)


def _print_result(result: DriftResult) -> None:
    from refit.drift_view import signals_table, summary_lines

    if result.signals:
        console.print(signals_table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False)


def reports(
    limit: Annotated[int, typer.Option(help="Most runs to list.", min=1)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List past drift checks with their verdicts and report paths.

    --json prints an array, newest first, of the checks' JSON summaries, each shaped as
    `refit drift --json` prints one (see `refit drift --help`); [] when there are none.
    """
    from refit.drift_view import runs_table
    from refit.monitoring.drift.history import list_runs, reports_dir

    settings = settings_from_env()
    runs = list_runs(reports_dir(settings.core.resolved_state_dir()), limit)
    if as_json:
        print_json([run.to_dict() for run in runs])
        return
    if not runs:
        console.print("no drift checks yet: run `refit drift`")
        return
    console.print(runs_table(runs))
