"""What every `refit` command shares: the consoles and the settings it runs with."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console

from core.errors import ConfigError
from service.settings import Settings, load_settings

console = Console()
err = Console(stderr=True)


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
        return load_settings(**overrides)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc
