"""`refit drift` and `refit reports`: check recent predictions, list past checks."""

from __future__ import annotations

from typing import Annotated

import typer

from refit.console import console, err, settings_from_env


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
) -> None:
    """Compare recent predictions with the model's training-time reference profile."""
    from monitoring.drift.check import run_drift_check
    from monitoring.drift.window import parse_window
    from refit.drift_view import signals_table, summary_lines

    settings = settings_from_env(drift_window=window)
    try:
        span = parse_window(settings.drift.drift_window)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    result = run_drift_check(settings, window=span, model_version=model_version)
    if result.signals:
        console.print(signals_table(result))
    for line in summary_lines(result):
        console.print(line, highlight=False)
    if fail_on_drift and result.drifted:
        raise typer.Exit(3)


def reports(
    limit: Annotated[int, typer.Option(help="Most runs to list.", min=1)] = 20,
) -> None:
    """List past drift checks with their verdicts and report paths."""
    from monitoring.drift.history import list_runs, reports_dir
    from refit.drift_view import runs_table

    settings = settings_from_env()
    runs = list_runs(reports_dir(settings.core.resolved_state_dir()), limit)
    if not runs:
        console.print("no drift checks yet: run `refit drift`")
        return
    console.print(runs_table(runs))
