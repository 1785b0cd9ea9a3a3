"""The one-text path gives exactly the ids of the tokenizer's own batch call."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from core.one_text_encoder import one_text_encoder

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
def test_ids_equal_the_batch_call(tiny_base_model: Path, max_length: int) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    encode = one_text_encoder(tokenizer, max_length)
    assert encode is not None
    for text in TEXTS:
        expected = tokenizer(
            [text],
            truncation=True,
            max_length=max_length,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"][0]
        assert encode(text) == expected, text
    assert len(encode(TEXTS[5])) == max_length


def test_its_settings_survive_other_calls_on_the_tokenizer(tiny_base_model: Path) -> None:
    """The tokenizer's own calls reset its backend's truncation; the copy keeps its own."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    encode = one_text_encoder(tokenizer, 8)
    assert encode is not None
    tokenizer(["word " * 50], truncation=True, max_length=30, padding="max_length")
    assert len(encode("word " * 50)) == 8
