"""Registered versions built from the tiny test model, without training."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def write_tiny_version(base: Path, labels: list[str], seed: int = 0) -> Callable[[Path], None]:
    """A `Registry.register` writer: the tiny model with a random head for `labels`."""

    def write(folder: Path) -> None:
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(base).save_pretrained(folder)
        (folder / "labels.json").write_text(json.dumps(labels))

    return write
