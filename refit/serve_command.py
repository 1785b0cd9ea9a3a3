"""`refit serve`: run the BentoML service on the champion."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from refit.console import console, err, settings_from_env
from refit.training_commands import train_default


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
    if Registry.from_settings(settings.core).champion_tag() is None:
        if not train_if_missing:
            err.print(
                "[red]no champion model yet:[/red] run `refit train` or add --train-if-missing"
            )
            raise typer.Exit(1)
        console.print("no model registered yet: training the default model first")
        train_default(settings)
    # The server reads its settings from the environment in its own processes.
    env = {
        **os.environ,
        "REFIT_HOST": settings.serving.host,
        "REFIT_PORT": str(settings.serving.port),
    }
    env["REFIT_WORKERS"] = str(settings.serving.resolved_workers())
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or "bentoml"
    args = [bentoml, "serve", "service.service:Classifier"]
    args += ["--host", settings.serving.host, "--port", str(settings.serving.port)]
    console.print(
        f"serving on http://{settings.serving.host}:{settings.serving.port} (docs at /docs)"
    )
    os.execvpe(args[0], args, env)
