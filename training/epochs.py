"""One pass of fine-tuning, one validation, and the overfitting check between epochs."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from accelerate import Accelerator
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader

from refit.core.errors import TrainingError
from refit.training.length_batches import Collate, Item


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    validation_loss: float
    validation_macro_f1: float
    seconds: float


class Progress(Protocol):
    """What the training loop reports; the CLI draws it as a progress bar."""

    def start(self, total_steps: int) -> None: ...

    def step(self, loss: float) -> None: ...

    def epoch_done(self, record: EpochRecord) -> None: ...


class Silent:
    def start(self, total_steps: int) -> None:
        pass

    def step(self, loss: float) -> None:
        pass

    def epoch_done(self, record: EpochRecord) -> None:
        pass


def overfitting_warning(history: Sequence[EpochRecord], patience: int = 2) -> str | None:
    """Flag a generalisation gap that keeps widening while validation loss rises.

    Training loss falling while validation loss climbs for `patience` consecutive
    epochs is the classic sign that more epochs now memorise rather than learn.
    """
    if len(history) <= patience:
        return None
    recent = history[-(patience + 1) :]
    gaps = [r.validation_loss - r.train_loss for r in recent]
    widening = all(b > a for a, b in itertools.pairwise(gaps))
    val_rising = all(b.validation_loss > a.validation_loss for a, b in itertools.pairwise(recent))
    if widening and val_rising:
        return (
            f"validation loss rose for {patience} epochs while training loss fell "
            f"(gap {gaps[0]:.3f} -> {gaps[-1]:.3f}); fewer epochs or more data may help"
        )
    return None


def train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    accelerator: Accelerator,
    progress: Progress,
) -> float:
    model.train()
    total, batches = 0.0, 0
    for batch in loader:
        loss = model(**batch).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainingError(
                "training loss became NaN/inf; lower REFIT_LEARNING_RATE or check the data"
            )
        total += value
        batches += 1
        progress.step(value)
    return total / max(batches, 1)


def validate(
    model: torch.nn.Module,
    items: list[Item],
    collate: Collate,
    batch_size: int,
) -> tuple[float, float]:
    """Validation loss and macro-F1, batches sorted by length for speed."""
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    device = next(model.parameters()).device
    losses: list[float] = []
    preds = np.empty(len(items), dtype=np.int64)
    gold = np.array([label for _, label in items], dtype=np.int64)
    step = max(batch_size, 64)
    with torch.inference_mode():
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            batch = collate([items[i] for i in idx])
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(**batch)
            losses.append(float(out.loss) * len(idx))
            preds[idx] = out.logits.argmax(dim=-1).cpu().numpy()
    model.train()
    loss = sum(losses) / max(len(items), 1)
    return loss, float(f1_score(gold, preds, average="macro", zero_division=0))
