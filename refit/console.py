"""What every `refit` command shares: the consoles and the settings it runs with.

Results go to stdout (`console`), progress and errors to stderr (`err`). On a terminal
both lay out at the terminal's width; writing to a file or a pipe they lay out at full
width, so that a table cell, a version or a path is never cut or wrapped for a script or
a log to find.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions

from refit.core.errors import ConfigError
from refit.core.model_store import link_model_store
from refit.service.settings import Settings, load_settings

# Width a console lays out at when its output is not a terminal: wide enough for any
# table refit prints, so nothing is cut or wrapped.
FILE_WIDTH = 10_000


class ScriptConsole(Console):
    """A rich console that keeps every line whole when its output is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal:
            return size
        # COLUMNS is ignored here on purpose: CI runners often set it to 80.
        return ConsoleDimensions(FILE_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = ScriptConsole()
err = ScriptConsole(stderr=True)

# The --json flag of every command that prints a result; each command's help says the shape.
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document (shape above) instead of text.")
]


def print_json(document: Any) -> None:
    """Write `document` to stdout as one JSON document: plain `json.dumps`, no markup or
    colour, so that `json.loads` of the whole output reads it back."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def quiet_libraries() -> None:
    """Keep library chatter (hub progress bars, load reports, telemetry) out of the output."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def settings_from_env(**overrides: Any) -> Settings:
    """Settings from the environment, command-line options (not None) taking precedence.

    An invalid value ends the command with status 2 and a line per variable.
    """
    try:
        settings = load_settings(**overrides)
        link_model_store(settings.core)  # REFIT_MODEL_STORE: before anything reads the store
        return settings
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc
