"""The dataset card: sections and numbers on a small hand-made dataset."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from refit.training.dataset_card import dataset_card
from refit.training.quality import audit, fingerprint, leakage
from refit.training.split import DatasetSplits, split_dataset


def part(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["text", "label"])


@pytest.fixture
def card() -> str:
    splits = DatasetSplits(
        train=part(
            [
                ("one", "pos"),
                ("one", "pos"),  # exact duplicate
                ("one two", "pos"),
                ("one two three", "neg"),
                ("Hello!", "pos"),
            ]
        ),
        validation=part([("four five", "neg")]),
        # "hello" is a near duplicate of "Hello!" in train, with another label.
        test=part([("six", "pos"), ("hello", "tech|support")]),
    )
    frame = pd.concat(splits.parts().values(), ignore_index=True)
    return dataset_card(
        frame,
        splits,
        audit(frame),
        source="data/support tickets.csv",
        fingerprint=fingerprint(frame),
        leakage=leakage(splits),
    )


def test_card_has_every_section(card: str) -> None:
    headings = re.findall(r"^#+ .*$", card, flags=re.MULTILINE)
    assert headings[:6] == [
        "# Dataset card",
        "## Size",
        "## Label balance",
        "## Text length",
        "## Duplicates and conflicting labels",
        "### Most repeated texts",
    ]
    assert "## Leakage between splits" in headings


def test_card_names_source_and_fingerprint(card: str) -> None:
    assert "- Source: `data/support tickets.csv`" in card
    assert re.search(r"- Fingerprint: `sha256:[0-9a-f]{64}`", card)
    assert "- Rows: 8" in card
    assert "- Labels: 3" in card


def test_card_sizes(card: str) -> None:
    assert "| train | 5 | 62.5% |" in card
    assert "| validation | 1 | 12.5% |" in card
    assert "| test | 2 | 25.0% |" in card
    assert "| all | 8 | 100.0% |" in card


def test_card_label_balance(card: str) -> None:
    assert "| Label | train | validation | test | all |" in card
    rows = [line for line in card.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `pos` | 4 (80.0%) | 0 (0.0%) | 1 (50.0%) | 5 (62.5%) |",
        "| `neg` | 1 (20.0%) | 1 (100.0%) | 0 (0.0%) | 2 (25.0%) |",
        "| `tech\\|support` | 0 (0.0%) | 0 (0.0%) | 1 (50.0%) | 1 (12.5%) |",
    ]


def test_card_text_lengths(card: str) -> None:
    # characters: 3 3 3 5 6 7 9 13; words: 1 1 1 1 1 2 2 3 (linear percentiles)
    assert "| Measure | min | p10 | median | p90 | max |" in card
    assert "| characters | 3 | 3 | 5.5 | 10.2 | 13 |" in card
    assert "| words | 1 | 1 | 1 | 2.3 | 3 |" in card


def test_card_quality_and_examples(card: str) -> None:
    assert "- Exact duplicate rows: 1 (12.5%)" in card
    assert "- Near duplicate rows: 1 (12.5%)" in card
    assert "- Texts with conflicting labels: 1 (2 rows)" in card
    assert "- “one”: 2 rows, label `pos`" in card
    assert "- “Hello\\!” / “hello”: 2 rows, labels `pos`, `tech|support`" in card


def test_card_leakage(card: str) -> None:
    assert "| train/validation | 0 |" in card
    assert "| train/test | 1 |" in card
    assert "| validation/test | 0 |" in card


def test_card_is_plain_markdown_even_for_hostile_texts() -> None:
    text = "line one\nline two <b>*bold*</b> | `tick`"
    frame = part([(text, "a"), (text, "a"), ("other", "b"), ("more", "b")])
    splits = split_dataset(frame, validation_fraction=0.1, test_fraction=0.1, seed=0)
    card = dataset_card(
        frame, splits, audit(frame), source="<generated>", fingerprint="sha256:x", leakage={}
    )
    # No raw HTML tag anywhere: "<" is escaped, or inside a code span.
    assert not re.search(r"(?<![\\`])<[A-Za-z/]", card)
    quoted = [line for line in card.splitlines() if "line one" in line]
    assert quoted == [
        "- “line one line two \\<b\\>\\*bold\\*\\</b\\> \\| \\`tick\\`”: 2 rows, label `a`"
    ]
    assert card.endswith("\n")
