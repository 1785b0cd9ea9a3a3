"""`refit data ...`: the built-in dataset, and checks of labelled files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from refit.console import console, err, settings_from_env

data_app = typer.Typer(help="Built-in datasets and checks of labelled files.", no_args_is_help=True)


@data_app.command("generate")
def data_generate(
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV, JSONL or Parquet file.")],
    rows: Annotated[int, typer.Option(help="Rows to generate.")] = 5000,
    scenario: Annotated[str, typer.Option(help="base or a drifted variant.")] = "base",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write the built-in customer-support dataset (or a drifted variant) to a file."""
    from refit.datagen import generate
    from refit.training.data_files import write_table

    try:
        frame = generate(rows, scenario=scenario, seed=seed)
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
    from refit.training.data import load_labelled
    from refit.training.quality import audit, fingerprint

    settings = settings_from_env()
    frame = load_labelled(
        data,
        text_column=settings.training.text_column,
        label_column=settings.training.label_column,
        min_examples_per_class=settings.training.min_examples_per_class,
    )
    report = audit(frame)
    console.print(f"{data}: {len(frame)} rows, {frame['label'].nunique()} labels, valid")
    console.print(f"fingerprint {fingerprint(frame)}")
    console.print(json.dumps(report.to_dict(), indent=2, default=str))
