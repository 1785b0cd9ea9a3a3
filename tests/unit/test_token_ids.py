"""One text and many give exactly the ids transformers' own call gives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from refit.core.token_ids import TokenIds
from refit.core.tokenizer_file import transformers_ids

TEXTS = [
    "My invoice was charged twice, please refund.",
    "  leading and trailing spaces  ",
    "Ünïcödé, émojis 🚚📦 and CJK 配送が遅れています",
    "a literal [SEP] and [CLS] and [UNK] in the text",
    "x",
    "word " * 400,  # far past max_length: truncated
    "tab\tnew\nline\r\nmixed",
]


@pytest.mark.parametrize("max_length", [8, 129])
def test_one_text_equals_the_batch_call(tiny_base_model: Path, max_length: int) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    token_ids = TokenIds(tokenizer, max_length)
    batch = token_ids(TEXTS)  # encode_batch on the copy
    expected = transformers_ids(tokenizer, TEXTS, max_length)
    assert batch == expected
    for text, row in zip(TEXTS, expected, strict=True):
        assert token_ids([text]) == [row], text  # encode on the copy
    assert len(token_ids([TEXTS[5]])[0]) == max_length


def test_the_copy_keeps_its_settings_after_other_calls(tiny_base_model: Path) -> None:
    """The tokenizer's own calls reset its backend's truncation; the copy keeps its own."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    token_ids = TokenIds(tokenizer, 8)
    tokenizer(["word " * 50], truncation=True, max_length=30, padding="max_length")
    assert len(token_ids(["word " * 50])[0]) == 8
