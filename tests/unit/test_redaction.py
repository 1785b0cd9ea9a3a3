"""What the prediction log keeps of a text under each text mode."""

from __future__ import annotations

import hashlib

import pytest

from refit.monitoring.redaction import prepare_text, redact, text_hash


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+orders@mail.example.co.uk today", "write to <email> today"),
        ("Email: X_Y@corp-mail.io.", "Email: <email>."),
        ("my card 4111 1111 1111 1111 was charged", "my card <card> was charged"),
        ("card 5500-0000-0000-0004", "card <card>"),
        ("amex 3782 822463 10005 please", "amex <card> please"),
        ("number 4111111111111111", "number <card>"),
        ("call +44 20 7946 0958 now", "call <phone> now"),
        ("ring (555) 123-4567 or 555.123.4567", "ring <phone> or <phone>"),
        ("mobile 0176-123-45678", "mobile <phone>"),
        ("or +1 555 0199", "or <phone>"),
        ("order 12345678 is late", "order <number> is late"),
        ("ref ABC1234567", "ref ABC<number>"),
    ],
)
def test_redact_masks_personal_data(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 12345 arrived on 2024-01-15 at 10:30",
        "3 items for 1,299.99 EUR, room 12",
        "version 1.2.3 of the app crashes",
        "",
        "no digits at all, just words @ symbols",
    ],
)
def test_redact_keeps_ordinary_text(text: str) -> None:
    assert redact(text) == text


def test_redaction_keeps_the_words_around_it() -> None:
    text = "Hi, I'm Ann (ann@example.org, +49 30 1234 5678). Refund order 99887766 pls!"
    assert redact(text) == "Hi, I'm Ann (<email>, <phone>). Refund order <number> pls!"


def test_prepare_text_modes() -> None:
    text = "contact me at bob@example.com about 123456"
    assert prepare_text(text, "raw") == text
    assert prepare_text(text, "redacted") == "contact me at <email> about <number>"
    assert prepare_text(text, "hashed") is None
    with pytest.raises(ValueError, match="unknown text mode"):
        prepare_text(text, "plain")


def test_text_hash_is_sha256_of_utf8() -> None:
    text = "café ☕ 123456"
    assert text_hash(text) == hashlib.sha256(text.encode()).hexdigest()
    assert len(text_hash("")) == 64
