"""The tiny model tests train and benchmarks serve: its config, in one place."""

from __future__ import annotations

from typing import Any

from transformers import BertConfig


def tiny_bert_config(vocab_size: int, **more: Any) -> BertConfig:
    """A 2-layer, 32-wide BERT (2 heads, intermediate size 37): trains in seconds, and its
    forward pass costs next to nothing, so a server of it shows the serving overhead.
    `more`: further config values (the label maps of a classifier)."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=512,
        **more,
    )
