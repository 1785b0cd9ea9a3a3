"""Fit a carried-over head's new rows on the frozen model before fine-tuning starts.

A challenger starts from the champion (`training.label_head`): rows for the labels
the champion knows are trained and confident, rows for labels that feedback brought
are random. In the first steps of fine-tuning every text of a new section is then
read, confidently, as some old section, and the large gradients of those mistakes
reshape the encoder that the champion's training built. Fitting the new rows first,
on the features the frozen model already gives (a linear probe before fine-tuning,
as LP-FT does), lets fine-tuning start from a head that already tells the new
labels apart, so its steps refine rather than repair.

Only the new rows and their biases are fitted; known rows stay as trained. Their
length is capped at the known rows' mean, so that no new label starts out more
confident than the ones the champion learned. Features come from a seeded sample of
at most `PROBE_ROWS_PER_LABEL` training rows per label, one forward pass each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from refit.training.label_head import output_layer
from refit.training.length_batches import Collate, Item

PROBE_ROWS_PER_LABEL: Final = 32  # the forward passes it costs: at most this per label
PROBE_STEPS: Final = 300
PROBE_LR: Final = 0.05
PROBE_L2: Final = 1e-3


@dataclass(frozen=True)
class ProbeResult:
    rows: int  # training rows whose features were used
    labels: int  # new head rows fitted
    accuracy_before: float  # on those rows, with the new rows as they started
    accuracy_after: float


def probe_new_rows(
    model: PreTrainedModel,
    items: Sequence[Item],
    new_ids: Sequence[int],
    collate: Collate,
    *,
    seed: int,
    batch_size: int = 32,
) -> ProbeResult:
    """Fit the output rows `new_ids` of `model` on its own features of `items`, in place."""
    if not new_ids:
        raise ValueError("no new head rows to fit")
    sample = _sample(items, PROBE_ROWS_PER_LABEL, seed)
    features = _head_inputs(model, [items[i] for i in sample], collate, batch_size)
    targets = torch.tensor([items[i][1] for i in sample], dtype=torch.long)
    _, _, layer = output_layer(model)
    weight, bias = layer.weight.detach().float().cpu(), _bias(layer)
    rows = torch.tensor(sorted(set(new_ids)), dtype=torch.long)
    before = _accuracy(features, targets, weight, bias)
    fitted_w, fitted_b = fit_new_rows(features, targets, weight, bias, rows, seed=seed)
    with torch.no_grad():
        layer.weight[rows] = fitted_w.to(layer.weight.dtype).to(layer.weight.device)
        if layer.bias is not None:
            layer.bias[rows] = fitted_b.to(layer.bias.dtype).to(layer.bias.device)
    after = _accuracy(features, targets, layer.weight.detach().float().cpu(), _bias(layer))
    return ProbeResult(len(sample), len(rows), before, after)


def _sample(items: Sequence[Item], per_label: int, seed: int) -> list[int]:
    """Indices of at most `per_label` items of each label, seeded, in order."""
    labels = np.asarray([label for _, label in items])
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = min(per_label, len(members))
        chosen.extend(rng.choice(members, size=take, replace=False).tolist())
    return sorted(chosen)


def _head_inputs(
    model: PreTrainedModel, items: list[Item], collate: Collate, batch_size: int
) -> torch.Tensor:
    """What the output layer receives for each item, with dropout off."""
    _, _, layer = output_layer(model)
    captured: list[torch.Tensor] = []

    def keep(_: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        captured.append(inputs[0].detach().float().cpu())

    was_training = model.training
    handle = layer.register_forward_pre_hook(keep)
    device = next(model.parameters()).device
    try:
        model.eval()
        # Length order keeps padding short; the order of the rows is restored below.
        order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = collate([items[i] for i in order[start : start + batch_size]])
                model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                )
    finally:
        handle.remove()
        model.train(was_training)
    stacked = torch.cat(captured)
    restored = torch.empty_like(stacked)
    restored[torch.tensor(order)] = stacked
    return restored


def fit_new_rows(
    features: torch.Tensor,
    targets: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    rows: torch.Tensor,
    *,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and biases for output `rows` that minimise cross-entropy on `features`
    with every other row fixed; no row longer than the known rows' mean length."""
    generator = torch.Generator().manual_seed(seed)
    scale = float(weight.norm(dim=1).mean()) / max(weight.shape[1], 1) ** 0.5
    new_w = (torch.randn(len(rows), weight.shape[1], generator=generator) * scale).requires_grad_()
    new_b = torch.full((len(rows),), float(bias.mean())).requires_grad_()
    optimiser = torch.optim.Adam([new_w, new_b], lr=PROBE_LR)
    for _ in range(PROBE_STEPS):
        w, b = weight.clone(), bias.clone()
        w[rows], b[rows] = new_w, new_b
        loss = nn.functional.cross_entropy(features @ w.T + b, targets)
        loss = loss + PROBE_L2 * new_w.pow(2).sum(dim=1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    fitted = new_w.detach()
    known = [i for i in range(weight.shape[0]) if i not in set(rows.tolist())]
    if known:
        cap = float(weight[known].norm(dim=1).mean())
        lengths = fitted.norm(dim=1, keepdim=True).clamp_min(1e-12)
        fitted = fitted * torch.clamp(cap / lengths, max=1.0)
    return fitted, new_b.detach()


def _bias(layer: nn.Linear) -> torch.Tensor:
    if layer.bias is None:
        return torch.zeros(layer.out_features)
    return layer.bias.detach().float().cpu()


def _accuracy(
    features: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> float:
    predicted = (features @ weight.T + bias).argmax(dim=1)
    return float((predicted == targets).float().mean())
