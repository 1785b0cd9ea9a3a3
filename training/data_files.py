"""Read a labelled data file into a frame, remembering where each row came from.

Only reading happens here: what a file says is checked in `training.data`. Problems
that stop reading raise `DataValidationError` at once; problems confined to a record
(a malformed JSON line, a CSV row with too many fields) are collected on the
`Table` so they are reported together with the rest.
"""

from __future__ import annotations

import csv
import json
import numbers
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa

from refit.core.errors import ConfigError, DataProblem, DataValidationError

SUPPORTED_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")


@dataclass
class Table:
    """A file read into a frame, with what is needed to point back into the file."""

    frame: pd.DataFrame
    unit: str  # how the user counts rows in this source: "row", "line" or "record"
    numbers: list[int] | None = None  # per frame row; None means position + 1
    problems: list[DataProblem] = field(default_factory=list)

    def number(self, position: int) -> int:
        return position + 1 if self.numbers is None else self.numbers[position]

    def problem(self, source: str, position: int, message: str) -> DataProblem:
        return DataProblem(source, message, self.number(position), self.unit)


def read_table(path: Path, source: str) -> Table:
    """Read `path`, chosen by its suffix; raises `DataValidationError` if it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        _fail(source, f"unsupported file type {suffix or '(none)'!r}; use one of {supported}")
    if not path.exists():
        _fail(source, "file not found")
    if not path.is_file():
        _fail(source, "is not a file")
    if path.stat().st_size == 0:
        _fail(source, "file is empty")
    try:
        if suffix == ".csv":
            return _read_csv(path, source)
        if suffix == ".parquet":
            return _read_parquet(path, source)
        return _read_jsonl(path, source)
    except UnicodeDecodeError as exc:
        _fail(source, f"is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8")
    except OSError as exc:
        _fail(source, f"cannot be read: {exc.strerror or exc}")


def _fail(source: str, message: str, line: int | None = None) -> NoReturn:
    raise DataValidationError([DataProblem(source, message, line, "line")])


def _read_csv(path: Path, source: str) -> Table:
    """Read with the csv module: every value stays a string ("NA", "null" included)
    and each record's first line is known exactly, even for quoted multi-line texts."""
    header: list[str] | None = None
    records: list[list[str]] = []
    lines: list[int] = []
    problems: list[DataProblem] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        end = 0
        try:
            for fields in reader:
                start, end = end + 1, reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                if header is None:
                    header = _csv_header(fields, source)
                elif len(fields) > len(header):
                    problems.append(_too_many_fields(source, start, len(fields), len(header)))
                else:
                    records.append(fields + [""] * (len(header) - len(fields)))
                    lines.append(start)
        except csv.Error as exc:
            message = f"malformed CSV ({exc}) in the record starting on file line {end + 1}"
            _fail(source, message + "; check its double quotes", end + 1)
    if header is None:
        _fail(source, "file is empty")
    if not records and not problems:
        _fail(source, "has a header but no data rows")
    frame = pd.DataFrame(records, columns=header, dtype=object)
    return Table(frame=frame, unit="line", numbers=lines, problems=problems)


def _csv_header(fields: list[str], source: str) -> list[str]:
    names = [name.strip() or f"Unnamed: {i}" for i, name in enumerate(fields)]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        _fail(source, f"the header names these columns more than once: {quoted(repeated)}", 1)
    return names


def _too_many_fields(source: str, line: int, found: int, expected: int) -> DataProblem:
    message = (
        f"has {found} fields but the header has {expected}; "
        "put texts that contain commas in double quotes"
    )
    return DataProblem(source, message, line, "line")


def _read_jsonl(path: Path, source: str) -> Table:
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    records: list[dict[str, object]] = []
    lines: list[int] = []
    problems: list[DataProblem] = []
    # One decoder, fed str: json.loads on bytes would sniff the encoding of every line.
    decoder = json.JSONDecoder()
    # bytes.splitlines splits only on \n, \r and \r\n, the line ends editors count.
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = decoder.decode(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            message = f"is not UTF-8 text: {exc.reason}"
            problems.append(DataProblem(source, message, number, "line"))
            continue
        except json.JSONDecodeError as exc:
            message = f"is not valid JSON: {exc.msg} (column {exc.colno})"
            problems.append(DataProblem(source, message, number, "line"))
            continue
        if not isinstance(value, dict):
            message = f"is {describe(value)}, not a JSON object"
            problems.append(DataProblem(source, message, number, "line"))
            continue
        records.append(value)
        lines.append(number)
    if not records and not problems:
        _fail(source, "file is empty")
    return Table(frame=pd.DataFrame(records), unit="line", numbers=lines, problems=problems)


def _read_parquet(path: Path, source: str) -> Table:
    try:
        frame = pd.read_parquet(path)
    except (ValueError, pa.ArrowException) as exc:
        _fail(source, f"is not a readable Parquet file: {exc}")
    if frame.empty and len(frame.columns) == 0:
        _fail(source, "file is empty")
    return Table(frame=frame, unit="record")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` in the format its suffix names, readable back by `read_table`."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(SUPPORTED_SUFFIXES)
        raise ConfigError(f"cannot write {path}: use one of {supported}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True, force_ascii=False)


def describe(value: object) -> str:
    """A short description of a value of the wrong type, for messages."""
    if isinstance(value, bool | np.bool_):
        return f"a boolean ({value})"
    if isinstance(value, numbers.Number):
        return f"a number ({value})"
    if isinstance(value, list | tuple | np.ndarray):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes):
        return "bytes"
    return f"a {type(value).__name__}"


def quoted(names: Iterable[str]) -> str:
    """Names as a comma-separated list of reprs, for messages."""
    return ", ".join(repr(name) for name in names)
