"""`refit train` and `refit evaluate`: fine-tune a version, score a version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from refit.console import JsonOption, console, err, print_json, settings_from_env
from refit.service.settings import Settings

DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        help="Labelled CSV, JSONL or Parquet file. Default: the built-in generated dataset.",
        exists=True,
        dir_okay=False,
    ),
]


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
    run_training(settings, data, promote)


def run_training(settings: Settings, data: Path | None, promote: bool) -> None:
    """Train as `refit train` does: progress on stderr, notes and the test report on stdout."""
    from refit.progress import training_progress
    from refit.render import evaluation_tables
    from refit.training.train import train as train_version

    with training_progress(err) as progress:
        run = train_version(
            settings, data=data, promote=promote, progress=progress, note=console.print
        )
    tables = evaluation_tables(run.test_report, title="Test split", abbreviate=console.is_terminal)
    for table in tables:
        console.print(table)
    status = "champion" if run.promoted else "not promoted (`refit models promote` to serve it)"
    console.print(
        f"registered [bold]{run.version.tag}[/bold] ({status}); "
        f"trained in {run.result.seconds:.0f} s; card: {run.version.path / 'model_card.md'}"
    )


def _evaluate_impl(data: Path, version: str | None, output: Path | None, as_json: bool) -> None:
    from refit.core.backends.loading import BackendOptions
    from refit.core.registry import Registry
    from refit.core.version_check import load_checked
    from refit.progress import counting
    from refit.render import evaluation_tables
    from refit.training.evaluate import evaluate_file

    settings = settings_from_env()
    target = Registry.from_settings(settings.core).get(version)
    # Scored on the backend a server would serve it on (REFIT_BACKEND): what serves is judged.
    options = BackendOptions(
        backend=settings.serving.backend,
        device=settings.core.device,
        max_length=target.max_length(settings.training.max_length),
        trace=settings.serving.forward_pass == "traced",
    )
    classifier = load_checked(target.path, target.tag, options)
    with counting(err, "evaluating") as progress:
        report = evaluate_file(classifier, data, settings, progress)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report.model_dump_json(indent=2))
    if as_json:
        print_json(report.model_dump(mode="json"))
    else:
        title = f"{target.tag} ({classifier.name}) on {data.name}"
        for table in evaluation_tables(report, title=title, abbreviate=console.is_terminal):
            console.print(table)
    if output is not None:
        (err if as_json else console).print(f"saved {output}", highlight=False)


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
    as_json: JsonOption = False,
) -> None:
    """Score a registered model version on a labelled file, overall and per slice.

    --json prints the evaluation report (the same document -o writes): {"overall": metrics,
    "slices": [{"column", "value", "metrics", "small"}], "weakest_slices": [...]}, where
    metrics is {"n", "accuracy", "macro_f1", "micro_f1", "weighted_f1", "ece",
    "per_class": {label: {"precision", "recall", "f1", "support"}}, "labels",
    "confusion_matrix"}, all figures unrounded. Progress goes to stderr.
    """
    _evaluate_impl(data, version, output, as_json)


def train_default(settings: Settings) -> None:
    """Train the default model (for `refit serve --train-if-missing`)."""
    run_training(settings, None, promote=False)
