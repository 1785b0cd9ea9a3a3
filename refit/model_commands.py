"""`refit models ...`: registered versions and the champion."""

from __future__ import annotations

from typing import Annotated

import typer

from refit.console import JsonOption, console, err, print_json, settings_from_env

models_app = typer.Typer(help="Registered model versions and the champion.", no_args_is_help=True)


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Show every registered version, its test metrics, and the champion.

    --json prints an array, newest first, of {"version", "tag", "created" (ISO 8601),
    "champion" (true/false), "path", "metrics": {"macro_f1", "accuracy", "ece"} (test
    split, unrounded), "metadata" (as registered)}.
    """
    from refit.core.registry import Registry
    from refit.model_view import version_document, versions_table

    registry = Registry.from_settings(settings_from_env().core)
    champion = registry.champion_tag()
    versions = registry.versions()
    if as_json:
        print_json([version_document(v, champion) for v in versions])
        return
    console.print(versions_table(registry.name, versions, champion))


@models_app.command("show")
def models_show(
    version: Annotated[str | None, typer.Argument(help="Version (default: champion).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Print a version's model card.

    --json prints {"version", "tag", "created" (ISO 8601), "champion" (true/false),
    "path", "metadata" (as registered), "metrics" (the version's metrics.json: its
    test-split evaluation report, as `refit evaluate --json` prints one; null if absent),
    "backends" (its backends.json: each inference backend against torch, and what
    REFIT_BACKEND=auto serves; null if it was never exported)}.
    """
    from refit.core.registry import Registry
    from refit.model_view import show_document

    registry = Registry.from_settings(settings_from_env().core)
    target = registry.get(version)
    if as_json:
        print_json(show_document(target, registry.champion_tag()))
        return
    console.print((target.path / "model_card.md").read_text(), markup=False, highlight=False)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="Version to serve from now on.")],
    reason: Annotated[str, typer.Option(help="Why; kept in the promotion log.")] = "manual",
) -> None:
    """Make a version the champion; running servers switch to it within seconds."""
    from refit.core.registry import Registry

    target = Registry.from_settings(settings_from_env().core).promote(
        version, reason=reason, actor="cli"
    )
    console.print(f"{target.tag} is now champion", highlight=False)


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option(help="Why; kept in the promotion log.")] = "rollback",
) -> None:
    """Serve the previous champion again (undoes the latest promotion)."""
    from refit.core.registry import Registry

    target = Registry.from_settings(settings_from_env().core).rollback(reason=reason, actor="cli")
    console.print(
        f"{target.tag} is champion again; running servers switch within seconds", highlight=False
    )


@models_app.command("export")
def models_export(
    version: Annotated[str | None, typer.Argument(help="Version (default: champion).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Export and verify again, replacing the record.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Export a version to ONNX (fp32 and int8) and verify every backend against torch.

    Every version `refit train` or a retrain registers gets this at registration; a
    version registered before gets it at its first load on a CPU when its folder is
    writable, or here. Writes model.onnx, model.int8.onnx and backends.json into the
    version folder and a Backends section into its model card; a version that has
    backends.json keeps it unless --force. --json prints backends.json.
    """
    from refit.core.registry import Registry
    from refit.model_view import backends_table
    from refit.training.export_later import export_version

    settings = settings_from_env()
    target = Registry.from_settings(settings.core).get(version)
    max_length = target.max_length(settings.training.max_length)
    with err.status(f"exporting and verifying {target.tag}"):
        record = export_version(target.path, target.tag, max_length=max_length, force=force)
    if as_json:
        print_json(record.model_dump(mode="json"))
        return
    console.print(backends_table(target.tag, record))
    console.print(f"auto on a CPU serves {record.auto_cpu}: {record.auto_reason}", highlight=False)


@models_app.command("history")
def models_history(as_json: JsonOption = False) -> None:
    """Every promotion and rollback, oldest first.

    --json prints an array, oldest first, of the promotion log's entries as recorded:
    {"time" (ISO 8601), "tag" (the new champion), "previous" (tag or null), "actor",
    "reason", ...}.
    """
    from refit.core.registry import Registry
    from refit.model_view import history_table

    events = Registry.from_settings(settings_from_env().core).history()
    if as_json:
        print_json(events)
        return
    console.print(history_table(events))
