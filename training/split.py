"""Deterministic train / validation / test split, stratified by label and grouped by text.

Rows whose texts are equal after `normalize_text` form one group and always land in
the same split, so neither exact nor near duplicates leak between splits.

How rows are shared out, label by label (a group counts for its most frequent label,
ties going to the alphabetically first):

* Targets are the fractions of the label's rows, rounded to whole rows.
* A label with at least `MIN_ROWS_FOR_EVERY_SPLIT` rows in at least three groups gets
  at least one row in each held-out split (whose fraction is above zero): one of its
  smallest groups is placed in test and another in validation before anything else.
* The other groups of two or more rows go, in shuffled order, to the split furthest
  below its target relative to that target among those they fit in (else train),
  so repeated texts are spread over the splits in proportion, as they would arrive
  in production, rather than all landing in train.
* Single rows then fill what each split still lacks, test first; the rest train.
  Fractions hold to within one group's size.
* A label with fewer rows goes entirely to train: a handful of held-out rows would
  estimate nothing, and the model needs every example it can get.

The outcome depends only on the rows and the seed, not on their order in the file:
groups are shuffled by a seeded hash of their normalised text.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from refit.core.errors import ConfigError
from refit.training.normalize import normalized

MIN_ROWS_FOR_EVERY_SPLIT = 10
_TRAIN, _VALIDATION, _TEST = 0, 1, 2


@dataclass(frozen=True)
class DatasetSplits:
    """The three parts of a dataset; each frame has the columns of the input."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def parts(self) -> dict[str, pd.DataFrame]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def sizes(self) -> dict[str, int]:
        return {name: len(part) for name, part in self.parts().items()}


def split_dataset(
    frame: pd.DataFrame, *, validation_fraction: float, test_fraction: float, seed: int
) -> DatasetSplits:
    """Split `frame` (with `text` and `label` columns) as the module docstring describes."""
    _check_fractions(validation_fraction, test_fraction)
    group_of_row, group_forms = pd.factorize(normalized(frame["text"]))
    label_codes, label_names = pd.factorize(frame["label"].astype(str).to_numpy(), sort=True)
    group_label = _majority_label(group_of_row, label_codes)
    group_size = np.bincount(group_of_row, minlength=len(group_forms))
    # A seeded hash of the normalised text is the shuffle: it does not depend on row
    # order, and one label's order does not depend on the other labels.
    shuffle_key = pd.util.hash_array(group_forms, hash_key=_hash_key(seed), categorize=False)
    order = np.lexsort((shuffle_key, group_label))
    bounds = np.searchsorted(group_label[order], np.arange(len(label_names) + 1))

    part_of_group = np.full(len(group_forms), _TRAIN, dtype=np.int8)
    fractions = (validation_fraction, test_fraction)
    for start, end in itertools.pairwise(bounds):
        groups = order[start:end]
        part_of_group[groups] = _share_out(group_size[groups], fractions)

    part_of_row = part_of_group[group_of_row]
    parts = [frame[part_of_row == part].reset_index(drop=True) for part in (0, 1, 2)]
    return DatasetSplits(train=parts[0], validation=parts[1], test=parts[2])


def _hash_key(seed: int) -> str:
    # pandas wants exactly 16 characters.
    return hashlib.sha256(str(seed).encode()).hexdigest()[:16]


def _check_fractions(validation_fraction: float, test_fraction: float) -> None:
    for name, value in (("validation", validation_fraction), ("test", test_fraction)):
        if not 0 <= value < 1:
            raise ConfigError(f"{name} fraction must be at least 0 and below 1, got {value}")
    if validation_fraction + test_fraction >= 1:
        raise ConfigError("validation and test fractions together must leave rows for training")


def _majority_label(group_of_row: np.ndarray, label_codes: np.ndarray) -> np.ndarray:
    """Each group's most frequent label code; ties go to the lowest code."""
    n_groups = int(group_of_row.max(initial=-1)) + 1
    counts = (
        pd.DataFrame({"group": group_of_row, "label": label_codes})
        .value_counts()
        .reset_index(name="rows")
        .sort_values(["group", "rows", "label"], ascending=[True, False, True])
        .drop_duplicates("group")
    )
    majority = np.zeros(n_groups, dtype=np.int64)
    majority[counts["group"].to_numpy()] = counts["label"].to_numpy()
    return majority


def _share_out(sizes: np.ndarray, fractions: tuple[float, float]) -> np.ndarray:
    """The split of each group of one label, groups given in shuffled order."""
    parts = np.full(len(sizes), _TRAIN, dtype=np.int8)
    total = int(sizes.sum())
    if total < MIN_ROWS_FOR_EVERY_SPLIT:
        return parts
    targets = _targets(total, fractions, cover=len(sizes) >= 3)
    filled = np.zeros(3, dtype=np.int64)
    order = np.arange(len(sizes))
    if len(sizes) >= 3:
        # The stable sort keeps the shuffled order among equal sizes.
        smallest = iter(np.argsort(sizes, kind="stable"))
        for part in (_TEST, _VALIDATION):
            if targets[part] > 0:
                index = next(smallest)
                parts[index] = part
                filled[part] += sizes[index]
        order = order[parts == _TRAIN]
    singles = order[sizes[order] == 1]
    wanted = np.maximum(targets, 1)
    for index in order[sizes[order] > 1]:
        fits = (filled + sizes[index] <= targets) & (targets > 0)
        fits[_TRAIN] = True
        need = np.where(fits, (targets - filled) / wanted, -np.inf)
        part = int(np.argmax(need))
        parts[index] = part
        filled[part] += sizes[index]
    # Single rows fill what each split still lacks, test first; the rest train.
    lacking = np.maximum(targets - filled, 0)
    test_end = int(lacking[_TEST])
    parts[singles[:test_end]] = _TEST
    parts[singles[test_end : test_end + int(lacking[_VALIDATION])]] = _VALIDATION
    return parts


def _targets(total: int, fractions: tuple[float, float], *, cover: bool) -> np.ndarray:
    """Rows wanted in [train, validation, test] for one label."""
    held_out = []
    for fraction in fractions:
        wanted = int(total * fraction + 0.5)
        held_out.append(max(wanted, 1) if cover and fraction > 0 else wanted)
    validation, test = held_out
    while validation + test >= total:  # always leave train at least one row
        if validation >= test:
            validation -= 1
        else:
            test -= 1
    return np.array([total - validation - test, validation, test], dtype=np.int64)
