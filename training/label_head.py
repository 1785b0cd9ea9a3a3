"""Carry a trained classification head over to a new label set.

A challenger fine-tuned from the champion must learn the labels its feedback
introduced. Loading the champion with `num_labels` changed makes transformers throw
the whole head away (`ignore_mismatched_sizes`), so the challenger relearns every
old class from scratch in a couple of epochs and forgets much of what the champion
knew: on the Debian benchmark, macro-F1 on the original sections fell from 0.83 to
0.70 that way. Here the head keeps one row per label the champion already had, in
the new order, and only rows for new labels start from fresh weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel


def config_labels(config: PretrainedConfig) -> list[str]:
    """A classifier config's labels in output order (transformers keys them by int)."""
    id2label: dict[Any, str] = dict(config.id2label or {})
    return [id2label[i] for i in range(len(id2label))]


def output_layer(model: PreTrainedModel) -> tuple[nn.Module, str, nn.Linear]:
    """(parent module, attribute name, layer): the last linear layer producing the logits.

    Heads differ by architecture (BERT `classifier`, RoBERTa `classifier.out_proj`,
    DistilBERT `classifier` after `pre_classifier`), but in each the logits come from
    the last `nn.Linear` whose width is the number of labels.
    """
    found: tuple[nn.Module, str, nn.Linear] | None = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear) and child.out_features == model.config.num_labels:
                found = (parent, name, child)
    if found is None:
        raise ValueError(
            f"{type(model).__name__} has no linear layer with {model.config.num_labels} outputs"
        )
    return found


def can_carry_over(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether every label the model has is still wanted (so its row can be kept)."""
    return bool(old) and set(old) <= set(new) and list(old) != list(new)


def regrow_head(model: PreTrainedModel, labels: Sequence[str], *, seed: int = 0) -> None:
    """Give `model` one output per label in `labels`, in that order, in place.

    Rows for labels the model already knows are copied; new rows start like a new
    head does in transformers (normal with the config's initializer range, bias 0).
    """
    old = config_labels(model.config)
    if not can_carry_over(old, labels):
        raise ValueError(f"cannot carry labels {old} over to {list(labels)}")
    parent, name, layer = output_layer(model)
    grown = nn.Linear(layer.in_features, len(labels), bias=layer.bias is not None)
    grown.to(device=layer.weight.device, dtype=layer.weight.dtype)
    generator = torch.Generator().manual_seed(seed)
    std = float(getattr(model.config, "initializer_range", 0.02))
    with torch.no_grad():
        fresh = torch.randn(grown.weight.shape, generator=generator) * std
        grown.weight.copy_(fresh.to(grown.weight.dtype))
        if grown.bias is not None:
            grown.bias.zero_()
        for row, label in enumerate(labels):
            if label in old:
                grown.weight[row] = layer.weight[old.index(label)]
                if grown.bias is not None and layer.bias is not None:
                    grown.bias[row] = layer.bias[old.index(label)]
    setattr(parent, name, grown)
    model.config.num_labels = len(labels)
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: i for i, label in enumerate(labels)}
    # The forward pass reads it to pick the loss; torch types unknown attributes as
    # Tensor | Module.
    model.num_labels = len(labels)  # type: ignore[assignment]
