"""The rich tables show the report's numbers, rounded to 3 decimals."""

from __future__ import annotations

import io

from rich.console import Console

from refit.render import abbreviate_labels, evaluation_tables
from refit.training.scores import evaluate_predictions

LONG = "extremely_long_label_name"
LABELS = ["a", "b", LONG]
# Same hand-computed case as test_metrics, with "c" renamed to a long label.
Y_TRUE = ["a", "a", "a", "b", "b", LONG]
Y_PRED = ["a", "a", "b", "b", LONG, LONG]


def _render(tables) -> str:
    console = Console(record=True, width=200, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.export_text()


def _rows(text: str, key: int) -> dict[str, list[str]]:
    """Body rows of rendered tables, keyed by the cell at index `key`."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if cells:
            rows[cells[key]] = cells
    return rows


def test_summary_per_class_and_confusion_numbers_appear():
    report = evaluate_predictions(Y_TRUE, Y_PRED, [0.9] * 6, LABELS)
    tables = evaluation_tables(report, title="Holdout")
    assert len(tables) == 3  # no slices given, so no slice table
    text = _render(tables)

    assert "Holdout: summary" in text
    assert "0.667" in text  # accuracy and micro F1 = 4/6
    assert "0.656" in text  # macro F1 = 59/90
    assert "0.678" in text  # weighted F1 = 61/90
    assert "0.233" in text  # ECE = 0.9 - 2/3
    assert "0.800" in text  # F1 of "a"
    confusion = text[text.index("confusion matrix") :]
    assert "extremely_l…" in confusion
    rows = _rows(confusion, key=0)
    assert rows["a"] == ["a", "2", "1", "0"]
    assert rows["b"] == ["b", "0", "1", "1"]
    assert rows[LONG] == [LONG, "0", "0", "1"]  # row headers keep the full label


def test_slice_table_marks_weak_and_small_slices():
    y_true = ["a", "b"] * 15 + ["a", "b"] * 12 + ["a"] * 4
    y_pred = ["a", "b"] * 15 + ["a", "a"] * 12 + ["b"] * 4
    channel = ["email"] * 30 + ["chat"] * 24 + ["fax"] * 4
    report = evaluate_predictions(
        y_true, y_pred, [0.8] * 58, ["a", "b"], slices={"channel": channel}
    )
    tables = evaluation_tables(report)
    assert len(tables) == 4
    text = _render(tables[3:])

    rows = _rows(text, key=1)
    assert rows["chat"] == ["channel", "chat", "24", "0.500", "0.333", "▼ weak"]
    assert rows["fax"] == ["channel", "fax", "4", "0.000", "0.000", "small"]
    assert rows["email"] == ["channel", "email", "30", "1.000", "1.000", ""]


def test_abbreviations_stay_distinct():
    short = abbreviate_labels(["customer_support_a", "customer_support_b", "ok"], width=8)
    assert len(set(short)) == 3
    assert short[2] == "ok"
    assert all(len(s) <= 10 for s in short)


def test_output_for_a_file_keeps_full_labels_in_the_confusion_matrix():
    report = evaluate_predictions(Y_TRUE, Y_PRED, [0.9] * 6, LABELS)
    text = _render(evaluation_tables(report, title="Holdout", abbreviate=False))
    confusion = text[text.index("confusion matrix") :]
    header = next(line for line in confusion.splitlines() if "true \\ pred" in line)
    assert LONG in header
    assert "…" not in text
