"""Near-duplicate normalisation, the order-independent fingerprint, audit and leakage."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from refit.training.normalize import normalize_text, normalized
from refit.training.quality import TextGroup, audit, fingerprint, leakage
from refit.training.split import DatasetSplits


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("  lots   of\tspace\n", "lots of space"),
        ("Order #12345 arrived 2 days late", "order 0 arrived 0 days late"),
        ("ＦＵＬＬ　ｗｉｄｔｈ１２", "full width0"),  # NFKC folds full-width forms
        ("Straße", "strasse"),  # casefold, not lower
        ("¿Qué tal?", "qué tal"),  # Unicode punctuation, not only ASCII
        ("don't", "dont"),
        ("I ❤ it", "i ❤ it"),  # symbols carry meaning and stay
        ("?!", "?!"),  # all punctuation: kept rather than emptied
        ("¿¡", "¿¡"),
        ("a\x1cb\x1fc", "a b c"),  # str.split whitespace, as for non-ASCII text
        ("Ünïcode, ASCII!\x1f", "ünïcode ascii"),
    ],
)
def test_normalize_text(text: str, expected: str) -> None:
    assert normalize_text(text) == expected


def test_normalized_maps_each_text() -> None:
    assert list(normalized(["A!", "b", "a"])) == ["a", "b", "a"]


# --- fingerprint ---------------------------------------------------------------------


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": ["refund please", "where is my parcel", "card declined", "refund please"],
            "label": ["billing", "shipping", "billing", "billing"],
            "channel": ["web", "app", "web", "app"],
        }
    )


def test_fingerprint_format(frame: pd.DataFrame) -> None:
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", fingerprint(frame))


def test_fingerprint_ignores_row_order_index_and_other_columns(frame: pd.DataFrame) -> None:
    shuffled = frame.sample(frac=1, random_state=7)
    assert list(shuffled.index) != list(frame.index)
    assert fingerprint(shuffled) == fingerprint(frame)
    assert fingerprint(shuffled.reset_index(drop=True)) == fingerprint(frame)
    assert fingerprint(frame.assign(channel="other")) == fingerprint(frame)


def test_fingerprint_changes_with_any_text_or_label(frame: pd.DataFrame) -> None:
    original = fingerprint(frame)
    changed_text = frame.copy()
    changed_text.loc[1, "text"] = "where is my parcel?"
    changed_label = frame.copy()
    changed_label.loc[2, "label"] = "shipping"
    one_duplicate_less = frame.drop(index=3)
    one_row_more = pd.concat([frame, frame.iloc[[0]]])
    variants = [changed_text, changed_label, one_duplicate_less, one_row_more]
    prints = {fingerprint(variant) for variant in variants}
    assert original not in prints
    assert len(prints) == len(variants)


def test_fingerprint_keeps_text_and_label_apart() -> None:
    one = pd.DataFrame({"text": ["ab"], "label": ["c"]})
    other = pd.DataFrame({"text": ["a"], "label": ["bc"]})
    assert fingerprint(one) != fingerprint(other)


# --- audit ---------------------------------------------------------------------------


def hand_made() -> pd.DataFrame:
    rows = [
        ("Hello there!", "a"),
        ("Hello there!", "a"),  # exact duplicate of row 0
        ("hello there", "a"),  # near duplicate
        ("HELLO THERE", "b"),  # near duplicate, and a second label for "hello there"
        ("Order 123 late", "c"),
        ("order 456 late.", "c"),  # near duplicate: digits and punctuation differ
        ("Unique text", "a"),
        ("Unique text", "d"),  # exact duplicate with a conflicting label
        ("Something else", "a"),
    ]
    return pd.DataFrame(rows, columns=["text", "label"])


def test_audit_counts() -> None:
    report = audit(hand_made())
    assert report.rows == 9
    # 7 distinct texts, 4 distinct normalised texts: 9 = 4 + 2 + 3.
    assert report.exact_duplicate_rows == 2
    assert report.near_duplicate_rows == 3
    assert report.conflicting_text_count == 2
    assert report.conflicting_rows == 6


def test_audit_examples() -> None:
    report = audit(hand_made())
    hello = TextGroup(
        texts=("Hello there!", "hello there", "HELLO THERE"), labels=("a", "b"), count=4
    )
    unique = TextGroup(texts=("Unique text",), labels=("a", "d"), count=2)
    assert report.conflicting_texts == [hello, unique]
    assert report.exact_duplicate_examples == [
        TextGroup(texts=("Hello there!",), labels=("a",), count=2),
        unique,
    ]
    assert report.near_duplicate_examples == [
        hello,
        TextGroup(texts=("Order 123 late", "order 456 late."), labels=("c",), count=2),
    ]


def test_audit_of_clean_data_finds_nothing() -> None:
    report = audit(pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "y", "x"]}))
    assert (report.exact_duplicate_rows, report.near_duplicate_rows) == (0, 0)
    assert report.conflicting_text_count == 0
    assert report.conflicting_texts == report.exact_duplicate_examples == []


def test_audit_samples_are_short_and_report_serialises() -> None:
    long_text = "word " * 200
    report = audit(pd.DataFrame({"text": [long_text, long_text], "label": ["a", "a"]}))
    [group] = report.exact_duplicate_examples
    assert len(group.texts[0]) == 200
    assert group.texts[0].endswith("…")
    decoded = json.loads(json.dumps(audit(hand_made()).to_dict()))
    assert decoded["exact_duplicate_rows"] == 2
    assert decoded["conflicting_texts"][0]["labels"] == ["a", "b"]


def test_audit_of_empty_frame() -> None:
    report = audit(pd.DataFrame({"text": [], "label": []}))
    assert report.rows == report.exact_duplicate_rows == report.near_duplicate_rows == 0


# --- leakage -------------------------------------------------------------------------


def test_leakage_counts_shared_normalised_texts() -> None:
    def part(texts: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"text": texts, "label": ["a"] * len(texts)})

    splits = DatasetSplits(
        train=part(["Hello!", "a b", "x", "x"]),
        validation=part(["hello", "y", "x 1"]),
        test=part(["A  B", "y.", "z", "X"]),
    )
    assert leakage(splits) == {"train/validation": 1, "train/test": 2, "validation/test": 1}
