"""Load a user's labelled data file and check every row before training sees it.

Every problem found is collected and raised together as one `DataValidationError`,
so a user fixes a file in one pass instead of one error per run.

Row numbers in problems are the ones a user would look up:

* CSV: the line of the file where the record starts. The header is line 1, so the
  first data row is line 2, which is also its row number in a spreadsheet.
* JSONL / NDJSON: the line of the file (blank lines are skipped but still counted).
* Parquet: the 1-based index of the record.
* An in-memory frame: the 1-based position of the row.
"""

from __future__ import annotations

import numbers
from collections import Counter, defaultdict
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from refit.core.errors import ConfigError, DataProblem, DataValidationError
from refit.training.data_files import SUPPORTED_SUFFIXES, Table, describe, quoted, read_table
from refit.training.problem_list import ProblemList, is_missing

__all__ = ["SUPPORTED_SUFFIXES", "load_labelled", "validate_labelled"]

# Rows listed per unknown label before "and N more".
_ROWS_SHOWN_PER_LABEL = 5
_LABELS_SHOWN = 20


def load_labelled(
    path: Path | str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    known_labels: Collection[str] | None = None,
    min_examples_per_class: int | None = None,
) -> pd.DataFrame:
    """Read a CSV, JSONL/NDJSON or Parquet file of labelled texts and validate it.

    Returns a new frame whose first columns are `text` and `label` (see
    `validate_labelled`). Raises `DataValidationError` listing every problem, each
    naming the file and, where it applies, the row as the user finds it: for CSV the
    file line where the record starts (header = line 1, so the first data row is 2),
    for JSONL the line, for Parquet the record counted from 1; each problem carries
    that unit, so it reads "data.csv, line 7: ..." or "data.parquet, record 7: ...".
    """
    source = str(path)
    table = read_table(Path(path), source)
    return _validate(table, source, text_column, label_column, known_labels, min_examples_per_class)


def validate_labelled(
    frame: pd.DataFrame,
    *,
    source: str,
    text_column: str = "text",
    label_column: str = "label",
    known_labels: Collection[str] | None = None,
    min_examples_per_class: int | None = None,
) -> pd.DataFrame:
    """Check an in-memory frame of labelled texts; rows are numbered from 1 by position.

    The result is a new frame: `text` (stripped strings) and `label` (strings; whole
    numbers become "0", "1", ...) first, every other column after them, index reset.
    `known_labels` (for evaluation data) refuses labels the model does not know.
    `min_examples_per_class` (for training data) refuses classes with fewer rows and
    data with fewer than two distinct labels.
    """
    table = Table(frame=frame, unit="row")
    return _validate(table, source, text_column, label_column, known_labels, min_examples_per_class)


# --- validation ----------------------------------------------------------------------


def _validate(
    table: Table,
    source: str,
    text_column: str,
    label_column: str,
    known_labels: Collection[str] | None,
    min_examples_per_class: int | None,
) -> pd.DataFrame:
    if text_column == label_column:
        raise ConfigError(
            f"REFIT_TEXT_COLUMN and REFIT_LABEL_COLUMN are both {text_column!r}; "
            "text and label must be different columns"
        )
    problems = list(table.problems)
    if len(table.frame) == 0 and problems:
        raise DataValidationError(problems)  # no record was readable: that says it all
    column_problems = _check_columns(table.frame, source, text_column, label_column)
    if column_problems:
        raise DataValidationError(problems + column_problems)
    if len(table.frame) == 0:
        raise DataValidationError([DataProblem(source, "has no data rows")])

    texts, text_problems = _clean_texts(table, source, table.frame[text_column].tolist())
    labels, label_problems = _clean_labels(table, source, table.frame[label_column].tolist())
    problems += text_problems + label_problems
    present = [label for label in labels if label is not None]
    if min_examples_per_class is not None:
        problems += _check_class_sizes(source, present, min_examples_per_class)
    if known_labels is not None:
        problems += _check_known(table, source, labels, known_labels)
    if problems:
        # Rows in file order, then what concerns the whole file.
        problems.sort(key=lambda p: (p.row is None, p.row or 0))
        raise DataValidationError(problems)
    return _assemble(table.frame, texts, labels, text_column, label_column)


def _check_columns(
    frame: pd.DataFrame, source: str, text_column: str, label_column: str
) -> list[DataProblem]:
    problems = []
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        message = f"these columns appear more than once: {quoted(repeated)}"
        problems.append(DataProblem(source, message))
    present = quoted([str(c) for c in frame.columns]) or "(none)"
    for column, role, setting in (
        (text_column, "text", "REFIT_TEXT_COLUMN"),
        (label_column, "label", "REFIT_LABEL_COLUMN"),
    ):
        if column not in frame.columns:
            message = (
                f"has no {role} column {column!r}; the columns present are {present}. "
                f"Set {setting} to the column that holds the {role}."
            )
            problems.append(DataProblem(source, message))
    return problems


def _clean_texts(
    table: Table, source: str, values: list[object]
) -> tuple[list[str], list[DataProblem]]:
    texts: list[str] = []
    found = ProblemList(source, table)
    for position, value in enumerate(values):
        if isinstance(value, str):
            text = value.strip()
            if not text:
                found.add("empty text", position, "text is empty or only whitespace")
            texts.append(text)
        elif is_missing(value):
            found.add("missing text", position, "text is missing")
            texts.append("")
        else:
            found.add("non-string text", position, f"text must be a string, not {describe(value)}")
            texts.append("")
    return texts, found.problems()


def _clean_labels(
    table: Table, source: str, values: list[object]
) -> tuple[list[str | None], list[DataProblem]]:
    labels: list[str | None] = []
    found = ProblemList(source, table)
    for position, value in enumerate(values):
        label, why = _label_of(value)
        if why is not None:
            found.add(why, position, why)
        labels.append(label)
    return labels, found.problems()


def _label_of(value: object) -> tuple[str | None, str | None]:
    """The label as a string, or None and why the value cannot be a label."""
    if isinstance(value, str):
        label = value.strip()
        return (label, None) if label else (None, "label is missing")
    if type(value) is int:  # the common case, before the slower checks below
        return str(value), None
    if is_missing(value):
        return None, "label is missing"
    if isinstance(value, bool | np.bool_):
        return ("true" if value else "false"), None
    if isinstance(value, numbers.Integral):
        return str(int(value)), None
    # Parquet and pandas turn integer columns with gaps into floats: 1.0 means "1".
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(float(value))), None
    return None, f"label must be text or a whole number, not {describe(value)}"


def _check_class_sizes(source: str, labels: list[str], minimum: int) -> list[DataProblem]:
    counts = Counter(labels)
    problems = [
        DataProblem(
            source,
            f"class {label!r} has {count} example{'s' if count != 1 else ''}, fewer than "
            f"the minimum of {minimum} (REFIT_MIN_EXAMPLES_PER_CLASS)",
        )
        for label, count in sorted(counts.items())
        if count < minimum
    ]
    if len(counts) < 2:
        found = quoted(sorted(counts)) or "none"
        message = f"needs at least 2 distinct labels to train a classifier; found {found}"
        problems.append(DataProblem(source, message))
    return problems


def _check_known(
    table: Table, source: str, labels: list[str | None], known: Collection[str]
) -> list[DataProblem]:
    known_set = {str(label) for label in known}
    where: dict[str, list[int]] = defaultdict(list)
    for position, label in enumerate(labels):
        if label is not None and label not in known_set:
            where[label].append(position)
    known_text = quoted(sorted(known_set)[:_LABELS_SHOWN])
    if len(known_set) > _LABELS_SHOWN:
        known_text += f" and {len(known_set) - _LABELS_SHOWN} more"
    problems = []
    for label in sorted(where):
        positions = where[label]
        shown = ", ".join(str(table.number(p)) for p in positions[:_ROWS_SHOWN_PER_LABEL])
        more = len(positions) - _ROWS_SHOWN_PER_LABEL
        rows = shown + (f" and {more} more" if more > 0 else "")
        plural = "s" if len(positions) > 1 else ""
        message = (
            f"label {label!r} is not one the model knows ({known_text}); "
            f"it is on {len(positions)} {table.unit}{plural}: {rows}"
        )
        problems.append(table.problem(source, positions[0], message))
    return problems


def _assemble(
    frame: pd.DataFrame,
    texts: list[str],
    labels: list[str | None],
    text_column: str,
    label_column: str,
) -> pd.DataFrame:
    rest = frame.drop(columns=[text_column, label_column]).reset_index(drop=True)
    taken = {"text", "label"}
    # Another column already called text/label must not shadow the configured ones.
    renames: dict[object, str] = {}
    for name in rest.columns:
        if name in taken:
            new = f"{name}_original"
            while new in rest.columns or new in renames.values():
                new += "_"
            renames[name] = new
    core = pd.DataFrame({"text": texts, "label": labels}, dtype=object)
    return pd.concat([core, rest.rename(columns=renames)], axis=1)
