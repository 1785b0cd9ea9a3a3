"""Data quality checks on validated labelled data: duplicates, conflicts, leakage.

Near duplicates are texts equal after `normalize_text`. Everything here hashes
(pandas factorize, numpy bincount) rather than comparing pairs, so it stays linear
in the number of rows and takes seconds on a million.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from refit.training.normalize import normalize_text, normalized
from refit.training.split import DatasetSplits

# Reports are read by people and serialised to JSON: long texts are cut.
_SAMPLE_CHARS = 200
_EXAMPLES = 5
_CONFLICTS_KEPT = 50


def fingerprint(frame: pd.DataFrame) -> str:
    """A digest of the (text, label) pairs of `frame`, independent of row order.

    Each pair is hashed on its own and the sorted pair digests are hashed again, so
    shuffling rows keeps the fingerprint while any change to a text or label, or
    adding or dropping a row (a duplicate included), changes it.
    """
    digests = sorted(
        hashlib.sha256(_pair_bytes(str(text), str(label))).digest()
        for text, label in zip(frame["text"], frame["label"], strict=True)
    )
    return "sha256:" + hashlib.sha256(b"".join(digests)).hexdigest()


def _pair_bytes(text: str, label: str) -> bytes:
    encoded = text.encode("utf-8", "surrogatepass")
    # The length prefix keeps ("ab", "c") apart from ("a", "bc").
    return b"%d:" % len(encoded) + encoded + label.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class TextGroup:
    """Rows that share a (normalised) text: a few spellings, their labels, how many."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    count: int


@dataclass
class QualityReport:
    """What `audit` found. Each row is counted in at most one of the duplicate counts.

    `exact_duplicate_rows` are rows whose text already appeared verbatim earlier;
    `near_duplicate_rows` are rows with a new text whose normalised form already
    appeared. So rows = distinct normalised texts + exact + near duplicate rows.
    `conflicting_texts` holds the largest groups of one normalised text with more than
    one label (at most 50); `conflicting_text_count` counts all of them.
    """

    rows: int
    exact_duplicate_rows: int
    near_duplicate_rows: int
    conflicting_text_count: int
    conflicting_rows: int
    conflicting_texts: list[TextGroup] = field(default_factory=list)
    exact_duplicate_examples: list[TextGroup] = field(default_factory=list)
    near_duplicate_examples: list[TextGroup] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit(frame: pd.DataFrame) -> QualityReport:
    """Count exact duplicates, near duplicates and conflicting labels in `frame`."""
    texts = frame["text"].astype(object).to_numpy()
    labels = frame["label"].astype(object).to_numpy()
    text_codes, text_uniques = pd.factorize(texts)
    forms = np.array([normalize_text(text) for text in text_uniques], dtype=object)
    form_of_unique, form_uniques = pd.factorize(forms)
    form_codes = form_of_unique[text_codes]
    label_codes, label_uniques = pd.factorize(labels)

    rows_per_text = np.bincount(text_codes, minlength=len(text_uniques))
    rows_per_form = np.bincount(form_codes, minlength=len(form_uniques))
    spellings_per_form = np.bincount(form_of_unique, minlength=len(form_uniques))
    # One key per distinct (form, label) pair; counting keys per form counts its labels.
    pair_keys = pd.unique(form_codes.astype(np.int64) * len(label_uniques) + label_codes)
    labels_per_form = np.bincount(
        pair_keys // max(len(label_uniques), 1), minlength=len(form_uniques)
    )
    conflicting = np.flatnonzero(labels_per_form > 1)
    groups = _Groups(texts, labels, text_codes, form_codes)
    return QualityReport(
        rows=len(texts),
        exact_duplicate_rows=len(texts) - len(text_uniques),
        near_duplicate_rows=len(text_uniques) - len(form_uniques),
        conflicting_text_count=len(conflicting),
        conflicting_rows=int(rows_per_form[conflicting].sum()),
        conflicting_texts=groups.forms(_largest(conflicting, rows_per_form, _CONFLICTS_KEPT)),
        exact_duplicate_examples=groups.texts(
            _largest(np.flatnonzero(rows_per_text > 1), rows_per_text, _EXAMPLES)
        ),
        near_duplicate_examples=groups.forms(
            _largest(np.flatnonzero(spellings_per_form > 1), rows_per_form, _EXAMPLES)
        ),
    )


def _largest(candidates: np.ndarray, sizes: np.ndarray, keep: int) -> np.ndarray:
    """The `keep` candidates with most rows; ties go to the one seen first in the data."""
    order = np.argsort(-sizes[candidates], kind="stable")
    return candidates[order[:keep]]


class _Groups:
    """Builds `TextGroup` records for a handful of chosen groups."""

    def __init__(
        self,
        texts: np.ndarray,
        labels: np.ndarray,
        text_codes: np.ndarray,
        form_codes: np.ndarray,
    ) -> None:
        self._texts, self._labels = texts, labels
        self._text_codes, self._form_codes = text_codes, form_codes

    def texts(self, chosen: np.ndarray) -> list[TextGroup]:
        return [self._group(self._text_codes == code) for code in chosen]

    def forms(self, chosen: np.ndarray) -> list[TextGroup]:
        return [self._group(self._form_codes == code) for code in chosen]

    def _group(self, mask: np.ndarray) -> TextGroup:
        spellings = pd.unique(self._texts[mask])
        return TextGroup(
            texts=tuple(_sample(str(text)) for text in spellings[:3]),
            labels=tuple(sorted({str(label) for label in self._labels[mask]})),
            count=int(mask.sum()),
        )


def _sample(text: str) -> str:
    return text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…"


def leakage(splits: DatasetSplits) -> dict[str, int]:
    """How many distinct normalised texts each pair of splits has in common."""
    forms = {name: set(normalized(part["text"])) for name, part in splits.parts().items()}
    return {
        "train/validation": len(forms["train"] & forms["validation"]),
        "train/test": len(forms["train"] & forms["test"]),
        "validation/test": len(forms["validation"] & forms["test"]),
    }
