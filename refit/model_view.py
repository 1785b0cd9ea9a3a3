"""Registered versions as tables and as JSON, for `refit models ...`.

Test metrics come from the version's `metrics.json` at full precision and are
formatted by `training.scores.format_metric`, as in the training output and the model
card; the rounded copies in the registry metadata are the fallback for a version
without `metrics.json`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from refit.core.backends.record import BackendRecord, read_record
from refit.core.registry import ModelVersion
from refit.training.scores import format_metric

# The overall test-split figures `models list` shows, by their metrics.json name.
SUMMARY_METRICS = ("macro_f1", "accuracy", "ece")


def read_metrics(version: ModelVersion) -> dict[str, Any] | None:
    """The version's metrics.json (its test-split evaluation report), or None."""
    try:
        metrics = version.read_json("metrics.json")
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) else None


def summary_metrics(version: ModelVersion) -> dict[str, float]:
    """Overall test figures, unrounded from metrics.json, else from the metadata."""
    metrics = read_metrics(version)
    overall = metrics.get("overall") if metrics else None
    if isinstance(overall, dict):
        return {name: overall[name] for name in SUMMARY_METRICS if name in overall}
    meta = version.metadata
    return {name: meta[f"test_{name}"] for name in SUMMARY_METRICS if f"test_{name}" in meta}


def _identity(version: ModelVersion, champion: str | None) -> dict[str, Any]:
    """The fields both JSON documents of a version open with."""
    return {
        "version": version.version,
        "tag": version.tag,
        "created": version.created.isoformat(),
        "champion": version.tag == champion,
        "path": str(version.path),
    }


def version_document(version: ModelVersion, champion: str | None) -> dict[str, Any]:
    """What `models list --json` prints per version."""
    return {
        **_identity(version, champion),
        "metrics": summary_metrics(version),
        "metadata": version.metadata,
    }


def show_document(version: ModelVersion, champion: str | None) -> dict[str, Any]:
    """What `models show --json` prints: the version, its whole metrics.json and its
    backends.json."""
    record, _ = read_record(version.path)
    return {
        **_identity(version, champion),
        "metadata": version.metadata,
        "metrics": read_metrics(version),
        "backends": None if record is None else record.model_dump(mode="json"),
    }


def versions_table(name: str, versions: Sequence[ModelVersion], champion: str | None) -> Table:
    table = Table(title=f"model {name}")
    table.add_column("version", overflow="fold")
    table.add_column("created")
    for header in ("macro F1", "accuracy", "ECE"):
        table.add_column(header, justify="right")
    table.add_column("base model", overflow="fold")
    table.add_column("")
    for v in versions:
        figures = summary_metrics(v)
        table.add_row(
            v.version,
            v.created.strftime("%Y-%m-%d %H:%M"),
            *(format_metric(name, figures.get(name)) for name in SUMMARY_METRICS),
            str(v.metadata.get("base_model", "")),
            "champion" if v.tag == champion else "",
        )
    return table


def backends_table(tag: str, record: BackendRecord) -> Table:
    """Each backend against torch, as `refit models export` measured it."""
    table = Table(title=f"{tag}: backends on the {record.data}")
    table.add_column("backend", overflow="fold")
    for header in ("agree", "max Δp", "Δ macro-F1", "b1 x", "b32 x"):
        table.add_column(header, justify="right")
    table.add_column("", overflow="fold")
    for c in record.candidates:
        table.add_row(
            f"{c.backend} ({c.method})" if c.method else c.backend,
            "-" if c.label_agreement is None else f"{c.label_agreement:.2%}",
            _fixed(c.max_prob_diff, "{:.4f}"),
            _fixed(c.macro_f1_diff, "{:+.4f}"),
            _fixed(c.ratio_batch1, "{:.2f}"),
            _fixed(c.ratio_batch32, "{:.2f}"),
            c.error or ("kept" if c.kept else ""),
        )
    return table


def _fixed(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def history_table(events: Sequence[dict[str, Any]]) -> Table:
    table = Table(title="promotions")
    table.add_column("time")
    table.add_column("champion", overflow="fold")
    table.add_column("previous", overflow="fold")
    table.add_column("by")
    table.add_column("reason")
    for event in events:
        table.add_row(
            str(event.get("time", "")),
            str(event.get("tag", "")),
            str(event.get("previous")),
            str(event.get("actor", "")),
            str(event.get("reason", "")),
        )
    return table
