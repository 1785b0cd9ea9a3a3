"""A Markdown dataset card: where the data came from, how it splits, what is wrong with it.

It is written beside every trained model, so it is plain Markdown (no HTML) that
reads well both rendered and as text. Texts quoted from the data are escaped and
cut short, since they may hold anything.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from refit.training.quality import QualityReport, TextGroup
from refit.training.split import DatasetSplits

_QUOTE_CHARS = 80
# Characters that would otherwise start Markdown markup inside a line or a table cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~&])")
_PERCENTILES = (("min", 0), ("p10", 10), ("median", 50), ("p90", 90), ("max", 100))


def dataset_card(
    frame: pd.DataFrame,
    splits: DatasetSplits,
    report: QualityReport,
    *,
    source: str,
    fingerprint: str,
    leakage: dict[str, int],
) -> str:
    """The dataset card of `frame` (all validated rows) as split into `splits`."""
    sections = [
        _overview(frame, splits, source, fingerprint),
        _label_balance(splits),
        _text_lengths(frame),
        _quality(report),
        _leakage(leakage),
    ]
    return "\n\n".join(sections) + "\n"


def _overview(frame: pd.DataFrame, splits: DatasetSplits, source: str, fingerprint: str) -> str:
    total = len(frame)
    rows = [
        f"| {name} | {size:,} | {_share(size, total)} |" for name, size in splits.sizes().items()
    ]
    return "\n".join(
        [
            "# Dataset card",
            "",
            f"- Source: `{_code(source)}`",
            f"- Fingerprint: `{fingerprint}`",
            f"- Rows: {total:,}",
            f"- Labels: {frame['label'].nunique():,}",
            "",
            "## Size",
            "",
            "| Split | Rows | Share |",
            "|---|---:|---:|",
            *rows,
            f"| all | {total:,} | {_share(total, total)} |",
        ]
    )


def _label_balance(splits: DatasetSplits) -> str:
    parts = splits.parts()
    counts = {name: part["label"].value_counts() for name, part in parts.items()}
    overall = pd.concat([part["label"] for part in parts.values()]).value_counts()
    labels = sorted(overall.index, key=lambda label: (-overall[label], str(label)))
    header = "| Label | " + " | ".join(parts) + " | all |"
    lines = ["## Label balance", "", "Rows per label, and their share of the split.", ""]
    lines += [header, "|---|" + "---:|" * (len(parts) + 1)]
    for label in labels:
        cells = [_count_share(int(counts[name].get(label, 0)), len(parts[name])) for name in parts]
        cells.append(_count_share(int(overall[label]), int(overall.sum())))
        # A code span keeps labels such as technical_issue readable in the raw text;
        # in a table cell a pipe must still be escaped.
        name = _code(str(label)).replace("|", "\\|")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _text_lengths(frame: pd.DataFrame) -> str:
    texts = frame["text"].astype(str)
    measures = {
        "characters": texts.str.len().to_numpy(),
        "words": texts.str.split().str.len().to_numpy(),
    }
    names = [name for name, _ in _PERCENTILES]
    lines = ["## Text length", "", "| Measure | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---:|" * len(names))
    for measure, values in measures.items():
        cells = [_number(values, q) for _, q in _PERCENTILES]
        lines.append(f"| {measure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _quality(report: QualityReport) -> str:
    rows = report.rows
    lines = [
        "## Duplicates and conflicting labels",
        "",
        "Near duplicates are texts that differ only in case, punctuation, digits or "
        "spacing. Each family of duplicates stays within one split.",
        "",
        f"- Exact duplicate rows: {report.exact_duplicate_rows:,} "
        f"({_share(report.exact_duplicate_rows, rows)})",
        f"- Near duplicate rows: {report.near_duplicate_rows:,} "
        f"({_share(report.near_duplicate_rows, rows)})",
        f"- Texts with conflicting labels: {report.conflicting_text_count:,} "
        f"({report.conflicting_rows:,} rows)",
    ]
    for title, groups in (
        ("Most repeated texts", report.exact_duplicate_examples),
        ("Near duplicate families", report.near_duplicate_examples),
        ("Conflicting labels", report.conflicting_texts[:5]),
    ):
        if groups:
            lines += ["", f"### {title}", "", *(_group_line(group) for group in groups)]
    return "\n".join(lines)


def _group_line(group: TextGroup) -> str:
    texts = " / ".join(f"“{_quote(text)}”" for text in group.texts)
    labels = ", ".join(f"`{_code(label)}`" for label in group.labels)
    noun = "label" if len(group.labels) == 1 else "labels"
    return f"- {texts}: {group.count:,} rows, {noun} {labels}"


def _leakage(leakage: dict[str, int]) -> str:
    lines = [
        "## Leakage between splits",
        "",
        "Distinct normalised texts found in both splits (0 means none).",
        "",
        "| Splits | Shared texts |",
        "|---|---:|",
    ]
    lines += [f"| {pair} | {count:,} |" for pair, count in leakage.items()]
    return "\n".join(lines)


def _number(values: np.ndarray, percentile: int) -> str:
    if len(values) == 0:
        return "-"
    value = float(np.percentile(values, percentile))
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"


def _count_share(count: int, total: int) -> str:
    return f"{count:,} ({_share(count, total)})"


def _quote(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _QUOTE_CHARS:
        flat = flat[: _QUOTE_CHARS - 1] + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def _code(text: str) -> str:
    # Inside a code span nothing is markup, but a backtick would end it early and a
    # line break would end the line.
    return " ".join(text.replace("`", "'").split())
