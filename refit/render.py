"""Terminal rendering of evaluation results with rich, for `refit evaluate`.

Numbers are rounded here and only here: the report keeps full precision so that
JSON output and comparisons between runs are not distorted by display choices.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from refit.training.scores import (
    ClassificationMetrics,
    EvaluationReport,
    SliceMetrics,
    format_metric,
)

# Confusion-matrix columns repeat every label, so on a terminal long labels would make
# the table wider than the screen; rows keep full labels since they occupy one column
# only. Output for a file or a pipe keeps full labels everywhere.
_MAX_LABEL_WIDTH = 12
_WEAK_MARKER = "▼ weak"
_SMALL_MARKER = "small"


def abbreviate_labels(labels: Sequence[str], width: int = _MAX_LABEL_WIDTH) -> list[str]:
    """Shorten labels to `width` characters, keeping them distinct."""
    short = [label if len(label) <= width else label[: width - 1] + "…" for label in labels]
    seen: dict[str, int] = {}
    for name in short:
        seen[name] = seen.get(name, 0) + 1
    # Two labels sharing a prefix would otherwise get the same header; number them.
    return [f"{name}#{i}" if seen[name] > 1 else name for i, name in enumerate(short, start=1)]


def _summary_table(metrics: ClassificationMetrics, title: str) -> Table:
    table = Table(title=f"{title}: summary")
    for header in ("n", "accuracy", "macro F1", "micro F1", "weighted F1", "ECE"):
        table.add_column(header, justify="right")
    table.add_row(
        str(metrics.n),
        format_metric("accuracy", metrics.accuracy),
        format_metric("macro_f1", metrics.macro_f1),
        format_metric("micro_f1", metrics.micro_f1),
        format_metric("weighted_f1", metrics.weighted_f1),
        format_metric("ece", metrics.ece),
    )
    return table


def _per_class_table(metrics: ClassificationMetrics, title: str) -> Table:
    table = Table(title=f"{title}: per class")
    table.add_column("label")
    for header in ("precision", "recall", "F1", "support"):
        table.add_column(header, justify="right")
    for label in metrics.labels:
        scores = metrics.per_class[label]
        table.add_row(
            label,
            format_metric("precision", scores.precision),
            format_metric("recall", scores.recall),
            format_metric("f1", scores.f1),
            str(scores.support),
        )
    return table


def _confusion_table(metrics: ClassificationMetrics, title: str, abbreviate: bool) -> Table:
    table = Table(
        title=f"{title}: confusion matrix", caption="rows: true label, columns: predicted"
    )
    table.add_column("true \\ pred")
    for header in abbreviate_labels(metrics.labels) if abbreviate else metrics.labels:
        table.add_column(header, justify="right")
    for label, row in zip(metrics.labels, metrics.confusion_matrix, strict=True):
        table.add_row(label, *(str(count) for count in row))
    return table


def _slice_marker(item: SliceMetrics, weakest: set[tuple[str, str]]) -> str:
    if (item.column, item.value) in weakest:
        return _WEAK_MARKER
    return _SMALL_MARKER if item.small else ""


def _slices_table(report: EvaluationReport, title: str) -> Table:
    table = Table(title=f"{title}: slices", caption=f"{_WEAK_MARKER}: macro F1 well below overall")
    table.add_column("column")
    table.add_column("value")
    for header in ("n", "accuracy", "macro F1"):
        table.add_column(header, justify="right")
    table.add_column("")
    weakest = {(s.column, s.value) for s in report.weakest_slices}
    for item in report.slices:
        table.add_row(
            item.column,
            item.value,
            str(item.metrics.n),
            format_metric("accuracy", item.metrics.accuracy),
            format_metric("macro_f1", item.metrics.macro_f1),
            _slice_marker(item, weakest),
        )
    return table


def evaluation_tables(
    report: EvaluationReport, *, title: str = "Evaluation", abbreviate: bool = True
) -> list[Table]:
    """Summary, per-class, confusion-matrix and (when there are slices) slice tables.

    `abbreviate` shortens the confusion matrix's column labels (for a terminal)."""
    tables = [
        _summary_table(report.overall, title),
        _per_class_table(report.overall, title),
        _confusion_table(report.overall, title, abbreviate),
    ]
    if report.slices:
        tables.append(_slices_table(report, title))
    return tables
