"""`refit`: train, evaluate, register, serve and watch text classifiers.

The root command only wires: each group of commands lives in a module of its own.
"""

from __future__ import annotations

import sys

import typer

from refit.console import err, quiet_libraries
from refit.core.errors import RefitError
from refit.data_commands import data_app
from refit.drift_commands import drift, reports
from refit.model_commands import models_app
from refit.retrain_commands import retrain_app, watch
from refit.serve_command import serve
from refit.settings_command import settings
from refit.training_commands import evaluate, train

app = typer.Typer(
    help="Fine-tune, serve and keep transformer text classifiers healthy in production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command()(train)
app.command()(evaluate)
app.command()(serve)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.command()(drift)
app.command()(reports)
app.add_typer(retrain_app, name="retrain")
app.command("watch")(watch)
app.command()(settings)


def main() -> None:
    quiet_libraries()
    try:
        app()
    except RefitError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
