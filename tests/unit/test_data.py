"""Loading and validating labelled files: formats, row numbers, every problem kind."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from refit.core.errors import ConfigError, DataValidationError
from refit.training.data import SUPPORTED_SUFFIXES, load_labelled, validate_labelled

GOOD_ROWS = [
    {"text": "  my card was charged twice ", "label": 0, "channel": "web"},
    {"text": "where is my parcel?", "label": 1, "channel": "app"},
    {"text": "NA", "label": 0, "channel": "web"},
    {"text": "refund please", "label": 1, "channel": "app"},
]


def write_csv(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def write_jsonl(path: Path, lines: Sequence[object]) -> Path:
    # A str is written as is (to make broken lines); anything else as JSON.
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def problems_of(path: Path, **options: object) -> list[tuple[int | None, str]]:
    with pytest.raises(DataValidationError) as caught:
        load_labelled(path, **options)  # type: ignore[arg-type]
    for problem in caught.value.problems:
        assert problem.source == str(path)
    return [(p.row, p.message) for p in caught.value.problems]


def good_files(tmp_path: Path) -> list[Path]:
    header = list(GOOD_ROWS[0])
    csv_path = write_csv(
        tmp_path / "good.csv", [header] + [[row[k] for k in header] for row in GOOD_ROWS]
    )
    jsonl_path = write_jsonl(tmp_path / "good.jsonl", GOOD_ROWS)
    parquet_path = tmp_path / "good.parquet"
    pd.DataFrame(GOOD_ROWS).to_parquet(parquet_path)
    return [csv_path, jsonl_path, parquet_path]


# --- good files ------------------------------------------------------------------------


def test_good_files_load_identically_from_every_format(tmp_path: Path) -> None:
    frames = [load_labelled(path, min_examples_per_class=2) for path in good_files(tmp_path)]
    expected = pd.DataFrame(
        {
            "text": ["my card was charged twice", "where is my parcel?", "NA", "refund please"],
            "label": ["0", "1", "0", "1"],
            "channel": ["web", "app", "web", "app"],
        },
        dtype=object,
    )
    for frame in frames:
        pd.testing.assert_frame_equal(frame, expected)
        assert isinstance(frame.index, pd.RangeIndex)


def test_ndjson_suffix_is_read_as_jsonl(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.NDJSON", GOOD_ROWS)
    assert load_labelled(path)["label"].tolist() == ["0", "1", "0", "1"]


def test_csv_keeps_na_like_texts_and_labels_as_strings(tmp_path: Path) -> None:
    rows = [["text", "label"], ["NA", "null"], ["null", "None"], ["nan", "N/A"], ["None", "NaN"]]
    frame = load_labelled(write_csv(tmp_path / "na.csv", rows))
    assert frame["text"].tolist() == ["NA", "null", "nan", "None"]
    assert frame["label"].tolist() == ["null", "None", "N/A", "NaN"]


def test_configured_columns_are_renamed_and_other_columns_kept(tmp_path: Path) -> None:
    rows: list[list[object]] = [
        ["id", "body", "text", "intent"],
        [1, " hello ", "raw 1", "greet"],
        [2, "bye", "raw 2", "leave"],
    ]
    frame = load_labelled(
        write_csv(tmp_path / "renamed.csv", rows), text_column="body", label_column="intent"
    )
    assert list(frame.columns) == ["text", "label", "id", "text_original"]
    assert frame["text"].tolist() == ["hello", "bye"]
    assert frame["label"].tolist() == ["greet", "leave"]
    assert frame["text_original"].tolist() == ["raw 1", "raw 2"]


def test_label_values_of_other_types_become_strings(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [1.0, 2.0, True, " x "]})
    result = validate_labelled(frame, source="<memory>")
    assert result["label"].tolist() == ["1", "2", "true", "x"]


def test_validate_labelled_resets_index_and_numbers_rows_by_position() -> None:
    frame = pd.DataFrame(
        {"text": ["ok", " ", "fine"], "label": ["a", "b", "a"]}, index=[10, 20, 30]
    )
    with pytest.raises(DataValidationError) as caught:
        validate_labelled(frame, source="<generated>")
    [problem] = caught.value.problems
    assert (problem.source, problem.row) == ("<generated>", 2)
    assert str(problem) == "<generated>, row 2: text is empty or only whitespace"
    result = validate_labelled(frame.drop(index=20), source="<generated>")
    assert list(result.index) == [0, 1]


def test_same_column_for_text_and_label_is_a_config_error(tmp_path: Path) -> None:
    path = good_files(tmp_path)[0]
    with pytest.raises(ConfigError, match="REFIT_TEXT_COLUMN"):
        load_labelled(path, text_column="text", label_column="text")


# --- problems with the file as a whole -----------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"
    assert problems_of(path) == [(None, "file not found")]


@pytest.mark.parametrize("name", ["data.txt", "data.xlsx", "data"])
def test_unsupported_suffix_lists_supported_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("text,label\nhi,a\n")
    [(row, message)] = problems_of(path)
    assert row is None
    assert "unsupported file type" in message
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in message


@pytest.mark.parametrize("name", ["empty.csv", "empty.jsonl", "empty.parquet"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert problems_of(path) == [(None, "file is empty")]


def test_blank_jsonl_and_header_only_csv_are_empty(tmp_path: Path) -> None:
    jsonl = tmp_path / "blank.jsonl"
    jsonl.write_text("\n  \n\n")
    assert problems_of(jsonl) == [(None, "file is empty")]
    header_only = write_csv(tmp_path / "header.csv", [["text", "label"]])
    assert problems_of(header_only) == [(None, "has a header but no data rows")]


def test_malformed_jsonl_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "broken.jsonl",
        [
            {"text": "fine", "label": "a"},
            "",
            '{"text": "missing quote, "label": "a"}',
            "[1, 2]",
            {"text": "also fine", "label": "b"},
            '{"text": "cut off"',
        ],
    )
    found = problems_of(path)
    assert [row for row, _ in found] == [3, 4, 6]
    assert found[0][1].startswith("is not valid JSON: ")
    assert "(column " in found[0][1]
    assert found[1][1] == "is a list, not a JSON object"
    assert "(column " in found[2][1]


def test_unreadable_parquet(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("text,label\nthis is not parquet,a\n")
    [(row, message)] = problems_of(path)
    assert row is None
    assert message.startswith("is not a readable Parquet file")


def test_csv_with_unclosed_quote(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text('text,label\nfine,a\n"never closed,b\nmore,a\n')
    [(row, message)] = problems_of(path)
    assert row == 3
    assert "malformed CSV" in message
    assert "file line 3" in message


def test_csv_row_with_too_many_fields(tmp_path: Path) -> None:
    path = tmp_path / "fields.csv"
    path.write_text("text,label\nfine,a\nhello, world,b\nok,b\n")
    assert problems_of(path) == [
        (
            3,
            "has 3 fields but the header has 2; put texts that contain commas in double quotes",
        )
    ]


def test_csv_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncafé crème,a\n".encode("latin-1"))
    [(row, message)] = problems_of(path)
    assert row is None
    assert "is not UTF-8" in message


@pytest.mark.parametrize(
    ("options", "setting", "missing"),
    [
        ({"text_column": "body"}, "REFIT_TEXT_COLUMN", "'body'"),
        ({"label_column": "intent"}, "REFIT_LABEL_COLUMN", "'intent'"),
    ],
)
def test_missing_column_names_present_columns_and_setting(
    tmp_path: Path, options: dict[str, str], setting: str, missing: str
) -> None:
    path = good_files(tmp_path)[1]
    [(row, message)] = problems_of(path, **options)
    assert row is None
    assert missing in message
    assert "'text', 'label', 'channel'" in message
    assert setting in message


# --- problems with rows -------------------------------------------------------------


def test_csv_row_problems_use_file_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    # line 1 header; line 2-3 one quoted two-line text; line 4 blank; lines 5-7 problems
    path.write_text('text,label\n"two\nlines",a\n\n   ,a\nno label,\n,\nfine,b\n')
    assert problems_of(path) == [
        (5, "text is empty or only whitespace"),
        (6, "label is missing"),
        (7, "text is empty or only whitespace"),
        (7, "label is missing"),
    ]


def test_multi_line_csv_record_is_numbered_by_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "multi.csv"
    path.write_text('text,label\nfine,a\n"three\nline\ntext",\nafter,\n')
    assert problems_of(path) == [
        (3, "label is missing"),
        (6, "label is missing"),
    ]


def test_row_problem_text_names_file_and_row(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("text,label\nfine,a\n ,b\n")
    with pytest.raises(DataValidationError) as caught:
        load_labelled(path)
    assert f"{path}, line 3: text is empty or only whitespace" in str(caught.value)


def test_jsonl_row_problems_use_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"text": "fine", "label": "a"},
            "",
            {"text": 42, "label": "a"},
            {"text": ["a", "list"], "label": "a"},
            {"text": None, "label": "b"},
            {"label": "b"},
            {"text": "   ", "label": "b"},
            {"text": "no label", "label": None},
            {"text": "bad label", "label": {"x": 1}},
            {"text": "half label", "label": 0.5},
        ],
    )
    assert problems_of(path) == [
        (3, "text must be a string, not a number (42)"),
        (4, "text must be a string, not a list"),
        (5, "text is missing"),
        (6, "text is missing"),
        (7, "text is empty or only whitespace"),
        (8, "label is missing"),
        (9, "label must be text or a whole number, not an object"),
        (10, "label must be text or a whole number, not a number (0.5)"),
    ]


def test_parquet_row_problems_use_record_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pd.DataFrame(
        {"text": ["fine", None, "", "ok"], "label": ["a", "a", "b", None], "n": [1, 2, 3, 4]}
    ).to_parquet(path)
    assert problems_of(path) == [
        (2, "text is missing"),
        (3, "text is empty or only whitespace"),
        (4, "label is missing"),
    ]
    numbers = problems_of(path, text_column="n")
    assert numbers[0] == (1, "text must be a string, not a number (1)")


def test_class_below_minimum_is_named_with_count(tmp_path: Path) -> None:
    rows = [["text", "label"]] + [[f"t{i}", "big"] for i in range(5)] + [["x", "small"]] * 2
    path = write_csv(tmp_path / "classes.csv", rows)
    assert problems_of(path, min_examples_per_class=3) == [
        (
            None,
            "class 'small' has 2 examples, fewer than the minimum of 3 "
            "(REFIT_MIN_EXAMPLES_PER_CLASS)",
        )
    ]
    assert len(load_labelled(path)) == 7  # no minimum asked: loads


def test_single_label_refused_for_training_but_not_for_evaluation(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", [["text", "label"], ["a", "x"], ["b", "x"]])
    [(row, message)] = problems_of(path, min_examples_per_class=2)
    assert row is None
    assert "at least 2 distinct labels" in message
    assert "'x'" in message
    assert len(load_labelled(path, known_labels=["x", "y"])) == 2


def test_unknown_labels_are_listed_with_their_rows(tmp_path: Path) -> None:
    labels = ["a", "weird", "a", "new"] + ["weird"] * 7
    rows = [["text", "label"]] + [[f"text {i}", label] for i, label in enumerate(labels)]
    path = write_csv(tmp_path / "eval.csv", rows)
    # Sorted by the first row each unknown label is on.
    assert problems_of(path, known_labels=["a", "b"]) == [
        (
            3,
            "label 'weird' is not one the model knows ('a', 'b'); "
            "it is on 8 lines: 3, 6, 7, 8, 9 and 3 more",
        ),
        (5, "label 'new' is not one the model knows ('a', 'b'); it is on 1 line: 5"),
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("text,label\n,a\nfine,\nok,zzz\nsure,a\n")
    with pytest.raises(DataValidationError) as caught:
        load_labelled(path, known_labels=["a"], min_examples_per_class=2)
    rows = [p.row for p in caught.value.problems]
    messages = " | ".join(p.message for p in caught.value.problems)
    assert rows[:3] == [2, 3, 4]
    assert "text is empty" in messages
    assert "label is missing" in messages
    assert "'zzz' is not one the model knows" in messages
    assert "class 'zzz' has 1 example" in messages
    assert str(caught.value).startswith(f"{len(rows)} data problems:")


def test_a_flood_of_row_problems_is_capped_with_a_summary() -> None:
    frame = pd.DataFrame({"text": [""] * 1500, "label": ["a"] * 1500})
    with pytest.raises(DataValidationError) as caught:
        validate_labelled(frame, source="<memory>")
    problems = caught.value.problems
    assert len(problems) == 1001
    assert problems[-1].row is None
    assert problems[-1].message.startswith("and 500 more rows with the same problem")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_written_tables_load_back_unchanged(tmp_path: Path, suffix: str) -> None:
    from refit.training.data_files import write_table

    frame = pd.DataFrame(
        {"text": ["first, with a comma", 'a "quoted" text', "naïve café"], "label": ["a", "b", "a"]}
    )
    path = tmp_path / f"out{suffix}"
    write_table(frame, path)
    loaded = load_labelled(path)
    assert loaded["text"].tolist() == frame["text"].tolist()
    assert loaded["label"].tolist() == frame["label"].tolist()
