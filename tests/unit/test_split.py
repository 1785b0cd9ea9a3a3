"""The split: stratified, grouped by normalised text, deterministic, no leakage."""

from __future__ import annotations

import pandas as pd
import pytest

from refit.core.errors import ConfigError
from refit.training.normalize import normalize_text
from refit.training.quality import leakage
from refit.training.split import MIN_ROWS_FOR_EVERY_SPLIT, DatasetSplits, split_dataset

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
]


def distinct_text(label: str, number: int) -> str:
    # Digits all normalise to "0", so distinct texts are spelled with words.
    return f"{label} " + " ".join(WORDS[int(digit)] for digit in str(number))


def labelled(counts: dict[str, int]) -> pd.DataFrame:
    rows = [
        {"text": distinct_text(label, i), "label": label, "row_id": f"{label}-{i}"}
        for label, count in counts.items()
        for i in range(count)
    ]
    return pd.DataFrame(rows)


def split(frame: pd.DataFrame, seed: int = 0, **fractions: float) -> DatasetSplits:
    options = {"validation_fraction": 0.1, "test_fraction": 0.1} | fractions
    return split_dataset(frame, seed=seed, **options)


def counts_by_label(splits: DatasetSplits) -> dict[str, dict[str, int]]:
    return {name: part["label"].value_counts().to_dict() for name, part in splits.parts().items()}


def test_each_label_is_split_by_the_fractions() -> None:
    splits = split(labelled({"big": 200, "mid": 100, "ten": 10}))
    assert counts_by_label(splits) == {
        "train": {"big": 160, "mid": 80, "ten": 8},
        "validation": {"big": 20, "mid": 10, "ten": 1},
        "test": {"big": 20, "mid": 10, "ten": 1},
    }
    assert splits.sizes() == {"train": 248, "validation": 31, "test": 31}


def test_other_fractions_are_respected() -> None:
    splits = split(labelled({"a": 300, "b": 100}), validation_fraction=0.2, test_fraction=0.3)
    assert splits.sizes() == {"train": 200, "validation": 80, "test": 120}


def test_class_of_minimum_size_reaches_every_split_and_smaller_one_stays_in_train() -> None:
    frame = labelled({"big": 100, "ten": MIN_ROWS_FOR_EVERY_SPLIT, "tiny": 6})
    for seed in range(5):
        counts = counts_by_label(split(frame, seed=seed))
        assert counts["validation"]["ten"] == counts["test"]["ten"] == 1
        assert counts["train"]["tiny"] == 6
        assert "tiny" not in counts["validation"]
        assert "tiny" not in counts["test"]


def test_class_made_of_duplicate_pairs_still_reaches_every_split() -> None:
    # Ten rows in five groups of two: without placing the smallest groups in the held-out
    # splits first, largest-first filling would leave validation without this class.
    pairs = labelled({"pairs": 5})
    pairs = pd.concat([pairs, pairs.assign(text=pairs["text"].str.upper())], ignore_index=True)
    frame = pd.concat([labelled({"big": 100}), pairs], ignore_index=True)
    for seed in range(5):
        counts = counts_by_label(split(frame, seed=seed))
        assert counts["validation"]["pairs"] == counts["test"]["pairs"] == 2
        assert counts["train"]["pairs"] == 6


def test_zero_fraction_gives_an_empty_split() -> None:
    splits = split(labelled({"a": 50, "b": 50}), validation_fraction=0.0, test_fraction=0.2)
    assert splits.sizes() == {"train": 80, "validation": 0, "test": 20}


def test_same_seed_same_split_other_seed_other_split() -> None:
    frame = labelled({"a": 120, "b": 80})
    first, again, other = split(frame, seed=1), split(frame, seed=1), split(frame, seed=2)
    for name in ("train", "validation", "test"):
        pd.testing.assert_frame_equal(first.parts()[name], again.parts()[name])
    assert set(first.test["row_id"]) != set(other.test["row_id"])


def test_row_order_does_not_change_the_split() -> None:
    frame = labelled({"a": 120, "b": 80})
    shuffled = frame.sample(frac=1, random_state=3)
    for (name, part), (_, other) in zip(
        split(frame).parts().items(), split(shuffled).parts().items(), strict=True
    ):
        assert set(part["row_id"]) == set(other["row_id"]), name


def test_near_duplicates_share_a_split_and_nothing_leaks() -> None:
    frame = labelled({"a": 150, "b": 150})
    variants = []
    for i in range(0, 150, 3):
        text = distinct_text("a", i)
        for n, spelled in enumerate([text.upper(), f"{text}!", f"  {text.title()}.  "]):
            variants.append({"text": spelled, "label": "a", "row_id": f"variant-{i}-{n}"})
    frame = pd.concat([frame, pd.DataFrame(variants)], ignore_index=True)
    splits = split(frame, seed=4)
    where = {row_id: name for name, part in splits.parts().items() for row_id in part["row_id"]}
    for i in range(0, 150, 3):
        family = {where[f"a-{i}"]} | {where[f"variant-{i}-{n}"] for n in range(3)}
        assert len(family) == 1, f"family {i} is spread over {family}"
    assert leakage(splits) == {"train/validation": 0, "train/test": 0, "validation/test": 0}
    # Groups of four rows move together, so fractions hold only roughly.
    sizes = splits.sizes()
    assert 0.08 <= sizes["test"] / len(frame) <= 0.12
    assert 0.08 <= sizes["validation"] / len(frame) <= 0.12


def test_a_text_with_conflicting_labels_stays_in_one_split() -> None:
    frame = labelled({"a": 60, "b": 60})
    conflict = pd.DataFrame(
        {"text": ["Is this a or b?"] * 3, "label": ["a", "b", "a"], "row_id": ["c0", "c1", "c2"]}
    )
    splits = split(pd.concat([frame, conflict], ignore_index=True))
    holding = [name for name, part in splits.parts().items() if part["row_id"].str[0].eq("c").any()]
    assert len(holding) == 1
    assert len(splits.parts()[holding[0]].query("row_id.str.startswith('c')")) == 3


def test_a_large_duplicate_group_does_not_upset_the_fractions() -> None:
    frame = labelled({"a": 90, "b": 100})
    repeated = pd.DataFrame({"text": ["same complaint"] * 30, "label": "a", "row_id": "dup"})
    splits = split(pd.concat([frame, repeated], ignore_index=True))
    counts = counts_by_label(splits)
    assert counts["validation"]["a"] == counts["test"]["a"] == 12  # 10% of 120 rows
    assert (splits.train["row_id"] == "dup").sum() == 30


def test_repeated_texts_reach_the_held_out_splits_in_proportion() -> None:
    # 40 texts each sent 5 times (200 rows) beside 200 one-off texts: if every repeat
    # went to train, the test split would only ever measure the one-off kind.
    frame = labelled({"a": 200})
    repeated = pd.DataFrame(
        [
            {"text": distinct_text("r", i), "label": "a", "row_id": f"rep-{i}"}
            for i in range(40)
            for _ in range(5)
        ]
    )
    splits = split(pd.concat([frame, repeated], ignore_index=True))
    assert splits.sizes() == {"train": 320, "validation": 40, "test": 40}
    for name in ("validation", "test"):
        share = splits.parts()[name]["row_id"].str.startswith("rep").mean()
        assert 0.25 <= share <= 0.75, (name, share)


def test_splits_keep_columns_and_have_fresh_indexes() -> None:
    frame = labelled({"a": 30, "b": 30}).assign(channel="web")
    splits = split(frame)
    for part in splits.parts().values():
        assert list(part.columns) == ["text", "label", "row_id", "channel"]
        assert isinstance(part.index, pd.RangeIndex)
        assert part.index.start == 0
    assert sum(splits.sizes().values()) == len(frame)
    recombined = pd.concat(splits.parts().values())
    assert sorted(recombined["row_id"]) == sorted(frame["row_id"])
    assert all(normalize_text(t) for t in recombined["text"])


@pytest.mark.parametrize(("validation", "test"), [(-0.1, 0.1), (0.1, 1.0), (0.5, 0.5), (0.6, 0.45)])
def test_impossible_fractions_are_refused(validation: float, test: float) -> None:
    with pytest.raises(ConfigError):
        split(labelled({"a": 20, "b": 20}), validation_fraction=validation, test_fraction=test)


def test_empty_frame_gives_empty_splits() -> None:
    splits = split(pd.DataFrame({"text": [], "label": []}))
    assert splits.sizes() == {"train": 0, "validation": 0, "test": 0}
