"""`refit retrain` and `refit watch`: drift-driven retraining from the command line."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer
from rich.table import Table

from refit.console import JsonOption, console, err, print_json, settings_from_env

retrain_app = typer.Typer(
    help="Retrain on recent labelled data; the gate decides whether the new model serves.",
    invoke_without_command=True,
)


@retrain_app.callback()
def retrain(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")] = "manual",
) -> None:
    """Retrain now: champion's data + feedback + incoming files, then the gate."""
    if ctx.invoked_subcommand is not None:
        return
    from refit.progress import training_progress
    from refit.retraining.job import run_retrain

    settings = settings_from_env()
    with training_progress(err) as progress:
        result = run_retrain(settings, reason=reason, progress=progress, note=console.print)
    for line in result.decision.reasons:
        console.print(f"  {line}")
    verdict = "promoted: now champion" if result.promoted else "refused: the champion stays"
    console.print(f"challenger {result.challenger.tag} {verdict} ({result.seconds:.0f} s)")


@retrain_app.command("history")
def history(
    limit: Annotated[int, typer.Option(help="Most recent entries to show.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Every retraining decision, including "no action", with its reasons.

    --json prints an array, oldest first, of the audit log's entries as recorded:
    {"time" (ISO 8601, UTC), "event" ("decision", "skipped", "check_failed", "retrain"
    or "retrain_failed"), then the event's details: "action" and "reasons" for a
    decision; "reason", "champion", "challenger", "promoted", "decision": {"reasons",
    ...}, "sizes", "seconds" and "shadow" (the shadow replay's whole report: "replayed",
    "reason", "rows", "agreement", "agreement_by_label", "changes", "examples",
    "confident_rows", "confident_changes", "confident_change_share", "mean_confidence",
    "estimated_accuracy", "latency_ms_per_1000", "feedback", ...) for a retrain;
    "error" for a failure}.
    """
    from refit.retraining.audit import AuditLog

    records = AuditLog(settings_from_env().core).read()[-limit:]
    if as_json:
        print_json(records)
        return
    table = Table(title="retraining audit log")
    for header in ("time", "event", "outcome", "agreement", "confident changes", "reasons"):
        table.add_column(header)
    for r in records:
        outcome = r.get("action") or ("promoted" if r.get("promoted") else "")
        if r["event"] == "retrain" and not r.get("promoted"):
            outcome = "champion kept"
        reasons = r.get("reasons") or (r.get("decision") or {}).get("reasons") or []
        detail = "; ".join(reasons) if reasons else r.get("error", r.get("reason", ""))
        table.add_row(r["time"], r["event"], outcome, *shadow_cells(r.get("shadow")), detail)
    console.print(table)


def shadow_cells(shadow: dict[str, Any] | None) -> tuple[str, str]:
    """(agreement, confident changes) of a retrain's shadow replay, for the history table."""
    if not isinstance(shadow, dict):
        return "", ""
    if not shadow.get("replayed"):
        return "not replayed", ""
    agreement = shadow.get("agreement")
    share = shadow.get("confident_change_share")
    counts = f"({shadow.get('confident_changes', 0)}/{shadow.get('confident_rows', 0)})"
    return (
        "n/a" if agreement is None else f"{agreement:.3f}",
        "n/a" if share is None else f"{share:.1%} {counts}",
    )


def watch(
    interval: Annotated[
        str | None, typer.Option(help="Run every interval, e.g. 15m, 1h (default 15m).")
    ] = None,
    cron: Annotated[
        str | None, typer.Option(help="Run on a cron expression instead, e.g. '*/15 * * * *'.")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="One round and exit (for a Kubernetes CronJob).")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Print the scheduler's state and exit.")
    ] = False,
) -> None:
    """Check drift on a schedule and retrain when the trigger policy says so."""
    from refit.retraining.watch_state import WatchState, state_path

    settings = settings_from_env()
    if status:
        print_json(WatchState.load(state_path(settings.core)).__dict__)
        return
    # Only now: the scheduler brings the drift check, and Evidently with it.
    from refit.retraining.schedule import Watcher, schedule, watch_trigger

    if interval and cron:
        raise typer.BadParameter("give --interval or --cron, not both")
    try:
        trigger = watch_trigger(settings, interval=interval, cron=cron)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    # A long-running job: its rounds and retrains go to stderr with timestamps.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("monitoring", "training", "refit"):
        logging.getLogger(name).setLevel(logging.INFO)
    if once:
        decision = Watcher(settings).tick()
        console.print(f"decision: {decision.action}")
        for reason in decision.reasons:
            console.print(f"  {reason}")
        return
    schedule(settings, trigger)
