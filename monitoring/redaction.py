"""What the prediction log keeps of a text: the text, a masked copy, or nothing.

Drift checks compare text statistics over time, so the redacted form keeps the
shape of the text (length, words, punctuation) and replaces only the parts that
identify a person or an account with fixed placeholders. The SHA-256 of the raw
text is always stored beside it, so repeated texts can still be matched when
only the hash is kept.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final, Literal

TextMode = Literal["raw", "redacted", "hashed"]
TEXT_MODES: Final = ("raw", "redacted", "hashed")

EMAIL: Final = "<email>"
CARD: Final = "<card>"
PHONE: Final = "<phone>"
NUMBER: Final = "<number>"

_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
# 13 to 19 digits, bare or grouped as printed on cards (4-4-4-4, 4-6-5 for Amex).
_CARD = re.compile(
    r"(?<![\w+])(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2}[ -]\d{1,7}|\d{4}[ -]\d{6}[ -]\d{5})(?!\w)"
)
# Digit groups joined by separators, optionally led by a country code or an area code
# in parentheses. Whether a match is really a phone number is decided by its digit count.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}(?![\w])"
)
_DIGIT_RUN = re.compile(r"\d{6,}")
_SEPARATED = re.compile(r"[ .()-]")


def _phone_or_keep(match: re.Match[str]) -> str:
    found = match.group(0)
    digits = sum(ch.isdigit() for ch in found)
    # A leading "+" or "(" marks a phone number even when short; bare groups need 9+
    # digits, so that dates (2024-01-15) and times are not taken for phone numbers.
    marked = found.startswith(("+", "("))
    if 7 <= digits <= 15 and (marked or digits >= 9) and _SEPARATED.search(found):
        return PHONE
    return found


def redact(text: str) -> str:
    """`text` with e-mail addresses, card-like numbers, phone numbers and runs of six
    or more digits replaced by placeholders."""
    text = _EMAIL.sub(EMAIL, text)
    text = _CARD.sub(CARD, text)
    text = _PHONE.sub(_phone_or_keep, text)
    return _DIGIT_RUN.sub(NUMBER, text)


def text_hash(text: str) -> str:
    """SHA-256 of the raw text (UTF-8), as 64 hex digits."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def prepare_text(text: str, mode: TextMode | str) -> str | None:
    """What the log stores in its `text` column under `mode`."""
    if mode == "raw":
        return text
    if mode == "redacted":
        return redact(text)
    if mode == "hashed":
        return None
    raise ValueError(f"unknown text mode {mode!r}; expected one of {', '.join(TEXT_MODES)}")
