"""`refit models ...`: registered versions and the champion."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from refit.console import console, settings_from_env

models_app = typer.Typer(help="Registered model versions and the champion.", no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """Show every registered version, its test metrics, and the champion."""
    from core.registry import Registry

    registry = Registry.from_settings(settings_from_env().core)
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

    target = Registry.from_settings(settings_from_env().core).get(version)
    console.print((target.path / "model_card.md").read_text())


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="Version to serve from now on.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the promotion log.")] = "manual",
) -> None:
    """Make a version the champion; running servers switch to it within seconds."""
    from core.registry import Registry

    target = Registry.from_settings(settings_from_env().core).promote(
        version, reason=reason, actor="cli"
    )
    console.print(f"{target.tag} is now champion")


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="Why; kept in the promotion log.")] = "rollback",
) -> None:
    """Serve the previous champion again (undoes the latest promotion)."""
    from core.registry import Registry

    target = Registry.from_settings(settings_from_env().core).rollback(reason=reason, actor="cli")
    console.print(f"{target.tag} is champion again; running servers switch within seconds")


@models_app.command("history")
def models_history() -> None:
    """Every promotion and rollback, oldest first."""
    from core.registry import Registry

    table = Table(title="promotions")
    for header in ("time", "champion", "previous", "by", "reason"):
        table.add_column(header)
    for event in Registry.from_settings(settings_from_env().core).history():
        table.add_row(
            event["time"], event["tag"], str(event["previous"]), event["actor"], event["reason"]
        )
    console.print(table)
