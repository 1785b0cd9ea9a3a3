"""`refit`: train, evaluate, register and serve text classifiers."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from refit.retrain_cli import retrain_app, watch
from core.errors import RefitError
from core.settings import Settings

app = typer.Typer(
    help="Fine-tune, serve and keep transformer text classifiers healthy in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Registered model versions and the champion.", no_args_is_help=True)
data_app = typer.Typer(help="Built-in datasets and checks of labelled files.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(retrain_app, name="retrain")
app.command("watch")(watch)
console = Console()
err = Console(stderr=True)

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Labelled CSV, JSONL or Parquet file. Default: the built-in generated dataset.",
        exists=True,
        dir_okay=False,
    ),
]


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def settings_from_env(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line options taking precedence."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        err.print("[red]invalid settings:[/red]\n" + "\n".join(lines))
        raise typer.Exit(2) from exc


def main() -> None:
    _quiet_libraries()
    try:
        app()
    except RefitError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


@app.command()
def train(
    data: DataOption = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training split.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens kept per text.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for split and training.")] = None,
    base_model: Annotated[
        str | None, typer.Option(help="Model folder or hub id to start from.")
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Make the new version champion.")
    ] = False,
) -> None:
    """Fine-tune a classifier, evaluate it on a held-out split and register it."""
    settings = settings_from_env(
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        base_model=base_model,
    )
    _train_impl(settings, data, promote)


def _train_impl(settings: Settings, data: Path | None, promote: bool) -> None:
    from refit.progress import TrainingProgress
    from refit.render import evaluation_tables
    from training.train import train as run_training

    with TrainingProgress(console) as progress:
        run = run_training(
            settings, data=data, promote=promote, progress=progress, note=console.print
        )
    for table in evaluation_tables(run.test_report, title="Test split"):
        console.print(table)
    status = "champion" if run.promoted else "not promoted (`refit models promote` to serve it)"
    console.print(
        f"registered [bold]{run.version.tag}[/bold] ({status}); "
        f"trained in {run.result.seconds:.0f} s; card: {run.version.path / 'model_card.md'}"
    )


def _evaluate_impl(data: Path, version: str | None, output: Path | None) -> None:
    from refit.progress import counting
    from refit.render import evaluation_tables
    from training.evaluate import evaluate_file
    from core.inference import TextClassifier
    from core.registry import Registry, check_version_files

    settings = settings_from_env()
    target = Registry.from_settings(settings).get(version)
    check_version_files(target.path)
    classifier = TextClassifier.from_folder(
        target.path,
        device=settings.device,
        max_length=target.max_length(settings.max_length),
    )
    with counting(console, "evaluating") as progress:
        report = evaluate_file(classifier, data, settings, progress)
    for table in evaluation_tables(report, title=f"{target.tag} on {data.name}"):
        console.print(table)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report.model_dump_json(indent=2))
        console.print(f"saved {output}")


@app.command()
def evaluate(
    data: Annotated[
        Path, typer.Option("--data", help="Labelled file to score.", exists=True, dir_okay=False)
    ],
    version: Annotated[
        str | None, typer.Option(help="Model version (default: the champion).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report as JSON here.")
    ] = None,
) -> None:
    """Score a registered model version on a labelled file, overall and per slice."""
    _evaluate_impl(data, version, output)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    train_if_missing: Annotated[
        bool,
        typer.Option(
            "--train-if-missing", help="Train the default model first if none is registered."
        ),
    ] = False,
) -> None:
    """Serve the champion over HTTP with adaptive batching (BentoML)."""
    from core.registry import Registry

    settings = settings_from_env(host=host, port=port, workers=workers)
    if Registry.from_settings(settings).champion_tag() is None:
        if not train_if_missing:
            err.print(
                "[red]no champion model yet:[/red] run `refit train` or add --train-if-missing"
            )
            raise typer.Exit(1)
        console.print("no model registered yet: training the default model first")
        _train_impl(settings, None, promote=False)
    # The server reads its settings from the environment in its own processes.
    env = {**os.environ, "REFIT_HOST": settings.host, "REFIT_PORT": str(settings.port)}
    env["REFIT_WORKERS"] = str(settings.resolved_workers())
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    args = [bentoml, "serve", "service.service:Classifier"]
    args += ["--host", settings.host, "--port", str(settings.port)]
    console.print(f"serving on http://{settings.host}:{settings.port} (docs at /docs)")
    os.execvpe(args[0], args, env)


@models_app.command("list")
def models_list() -> None:
    """Show every registered version, its test metrics, and the champion."""
    from core.registry import Registry

    registry = Registry.from_settings(settings_from_env())
    champion = registry.champion_tag()
    table = Table(title=f"model {registry.name}")
    for header in ("version", "created", "macro F1", "accuracy", "ECE", "base model", ""):
        table.add_column(header)
    for v in registry.versions():
        m = v.metadata
        table.add_row(
            v.version,
            v.created.strftime("%Y-%m-%d %H:%M"),
            f"{m.get('test_macro_f1', float('nan')):.3f}",
            f"{m.get('test_accuracy', float('nan')):.3f}",
            f"{m.get('test_ece', float('nan')):.3f}",
            str(m.get("base_model", "")),
            "champion" if v.tag == champion else "",
        )
    console.print(table)


@models_app.command("show")
def models_show(
    version: Annotated[str | None, typer.Argument(help="Version (default: champion).")] = None,
) -> None:
    """Print a version's model card."""
    from core.registry import Registry

    target = Registry.from_settings(settings_from_env()).get(version)
    console.print((target.path / "model_card.md").read_text())


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="Version to serve from now on.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the promotion log.")] = "manual",
) -> None:
    """Make a version the champion; running servers switch to it within seconds."""
    from core.registry import Registry

    target = Registry.from_settings(settings_from_env()).promote(
        version, reason=reason, actor="cli"
    )
    console.print(f"{target.tag} is now champion")


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="Why; kept in the promotion log.")] = "rollback",
) -> None:
    """Serve the previous champion again (undoes the latest promotion)."""
    from core.registry import Registry

    target = Registry.from_settings(settings_from_env()).rollback(reason=reason, actor="cli")
    console.print(f"{target.tag} is champion again; running servers switch within seconds")


@models_app.command("history")
def models_history() -> None:
    """Every promotion and rollback, oldest first."""
    from core.registry import Registry

    table = Table(title="promotions")
    for header in ("time", "champion", "previous", "by", "reason"):
        table.add_column(header)
    for event in Registry.from_settings(settings_from_env()).history():
        table.add_row(
            event["time"], event["tag"], str(event["previous"]), event["actor"], event["reason"]
        )
    console.print(table)


@data_app.command("generate")
def data_generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV, JSONL or Parquet file.")],
    rows: Annotated[int, typer.Option(help="Rows to generate.")] = 5000,
    scenario: Annotated[str, typer.Option(help="base or a drifted variant.")] = "base",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write the built-in customer-support dataset (or a drifted variant) to a file."""
    import datagen
    from training.data_files import write_table

    try:
        frame = datagen.generate(rows, scenario=scenario, seed=seed)
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    write_table(frame, output)
    console.print(f"wrote {len(frame)} rows ({scenario}) to {output}")


@data_app.command("check")
def data_check(
    data: Annotated[Path, typer.Argument(help="Labelled file.", exists=True, dir_okay=False)],
) -> None:
    """Validate a labelled file and report duplicates, conflicts and label balance."""
    from training.data import load_labelled
    from training.quality import audit, fingerprint

    settings = settings_from_env()
    frame = load_labelled(
        data,
        text_column=settings.text_column,
        label_column=settings.label_column,
        min_examples_per_class=settings.min_examples_per_class,
    )
    report = audit(frame)
    console.print(f"{data}: {len(frame)} rows, {frame['label'].nunique()} labels, valid")
    console.print(f"fingerprint {fingerprint(frame)}")
    console.print(json.dumps(report.to_dict(), indent=2, default=str))


@app.command()
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
        span = parse_window(settings.drift_window)
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


@app.command()
def reports(
    limit: Annotated[int, typer.Option(help="Most runs to list.", min=1)] = 20,
) -> None:
    """List past drift checks with their verdicts and report paths."""
    from monitoring.drift.history import list_runs, reports_dir
    from refit.drift_view import runs_table

    settings = settings_from_env()
    runs = list_runs(reports_dir(settings.resolved_state_dir()), limit)
    if not runs:
        console.print("no drift checks yet: run `refit drift`")
        return
    console.print(runs_table(runs))
