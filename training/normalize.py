"""The normal form under which two texts count as the same: near-duplicate detection.

Splits group rows by it (so near duplicates never straddle a split), quality checks
count by it, and retraining uses it to skip texts the champion already learned.
"""

from __future__ import annotations

import functools
import re
import string
import sys
import unicodedata
from collections.abc import Sequence

import numpy as np
import pandas as pd

_DIGIT_RUN = re.compile(r"\d+")
_ASCII_DIGIT_RUN = re.compile(rb"[0-9]+")
_ASCII_LOWER = bytes.maketrans(string.ascii_uppercase.encode(), string.ascii_lowercase.encode())


@functools.cache
def _punctuation_table() -> dict[int, None]:
    # Unicode punctuation (categories P*), not just ASCII: "¿" and "。" are punctuation too.
    # Symbols such as emoji carry meaning (sentiment) and are kept.
    return {
        code: None
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)).startswith("P")
    }


def normalize_text(text: str) -> str:
    """The form under which two texts count as near duplicates.

    NFKC, casefolded, punctuation removed, each run of digits replaced by "0" and
    whitespace collapsed. A text made only of punctuation keeps its punctuation, so
    that "?" and "!!!" are not taken for the same text.
    """
    if text.isascii():
        return _normalize_ascii(text)
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = _DIGIT_RUN.sub("0", folded.translate(_punctuation_table()))
    return " ".join(stripped.split()) or " ".join(folded.split())


def _normalize_ascii(text: str) -> str:
    # Same result as the general path (NFKC leaves ASCII alone, casefold is lower),
    # on bytes, where it is about twice as fast: most data is ASCII.
    folded = text.encode("ascii").translate(_ASCII_LOWER)
    stripped = folded.translate(None, _ascii_punctuation())
    if len(stripped.translate(None, b"0123456789")) != len(stripped):  # cheaper than re
        stripped = _ASCII_DIGIT_RUN.sub(b"0", stripped)
    # str.split, not bytes.split: it also treats \x1c-\x1f as whitespace.
    return " ".join(stripped.decode("ascii").split()) or " ".join(folded.decode("ascii").split())


@functools.cache
def _ascii_punctuation() -> bytes:
    return bytes(code for code in _punctuation_table() if code < 128)


def normalized(texts: Sequence[str] | pd.Series) -> np.ndarray:
    """`normalize_text` of each text, computing each distinct text once."""
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object))
    forms = np.array([normalize_text(text) for text in uniques], dtype=object)
    return forms[codes]
