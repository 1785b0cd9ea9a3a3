"""Fine-tune a pretrained encoder into a text classifier.

A plain PyTorch loop driven by Hugging Face Accelerate: the same code runs on a
CPU, one GPU (bf16 autocast), or several GPUs under `accelerate launch` /
`torchrun`. Batches are padded to their longest item and drawn from groups of
similar length, which on short, mixed-length text is several times faster than
fixed-length padding. The epoch with the best validation macro-F1 is kept.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import torch
from accelerate import Accelerator
from sklearn.metrics import f1_score
from torch.utils.data import DataLoader, Sampler
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
    set_seed,
)

from training.base_model import resolve_base_model
from core.errors import ModelLoadError, TrainingError
from core.inference import resolve_device


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 3
    learning_rate: float = 1e-4
    batch_size: int = 32
    max_length: int = 128
    seed: int = 42
    device: str = "auto"
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    validation_loss: float
    validation_macro_f1: float
    seconds: float


@dataclass
class FineTuneResult:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    labels: list[str]
    history: list[EpochRecord]
    best_epoch: int
    overfitting: str | None
    seconds: float
    train_examples_per_second: float
    device: str
    config: TrainingConfig = field(default_factory=TrainingConfig)

    def summary(self) -> dict[str, object]:
        return {
            "config": asdict(self.config),
            "history": [asdict(r) for r in self.history],
            "best_epoch": self.best_epoch,
            "overfitting": self.overfitting,
            "seconds": round(self.seconds, 2),
            "train_examples_per_second": round(self.train_examples_per_second, 1),
            "device": self.device,
        }


class Progress(Protocol):
    """What the training loop reports; the CLI draws it as a progress bar."""

    def start(self, total_steps: int) -> None: ...

    def step(self, loss: float) -> None: ...

    def epoch_done(self, record: EpochRecord) -> None: ...


class _Silent:
    def start(self, total_steps: int) -> None:
        pass

    def step(self, loss: float) -> None:
        pass

    def epoch_done(self, record: EpochRecord) -> None:
        pass


class LengthGroupedBatches(Sampler[list[int]]):
    """Shuffled batches whose members have similar lengths.

    The data is shuffled, cut into pools of `pool_batches` batches, each pool is
    sorted by length and cut into batches, and the batch order is shuffled again:
    random enough for SGD, with little padding inside a batch.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int, pool_batches: int = 50
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches: list[list[int]] = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=self.lengths.__getitem__)
            batches.extend(
                pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)
            )
        rng.shuffle(batches)
        return iter(batches)


def _collate(pad_id: int) -> object:
    def collate(items: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
        width = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for i, (ids, _) in enumerate(items):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            mask[i, : len(ids)] = 1
        labels = torch.tensor([label for _, label in items], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}

    return collate


def _encode(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    labels: Sequence[str],
    label2id: dict[str, int],
    max_length: int,
) -> list[tuple[list[int], int]]:
    ids = tokenizer(
        list(texts), truncation=True, max_length=max_length, return_token_type_ids=False
    )["input_ids"]
    return [(row, label2id[label]) for row, label in zip(ids, labels, strict=True)]


def _mixed_precision(device: str) -> tuple[bool, str]:
    """(use the CPU, mixed precision mode) for Accelerate."""
    try:
        on_cpu = resolve_device(device).type == "cpu"
    except ModelLoadError as exc:
        raise TrainingError(str(exc)) from exc
    return on_cpu, ("no" if on_cpu else "bf16")


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


def fine_tune(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    val_texts: Sequence[str],
    val_labels: Sequence[str],
    *,
    base_model: str,
    config: TrainingConfig,
    progress: Progress | None = None,
) -> FineTuneResult:
    """Fine-tune `base_model` on the training split; keep the best validation epoch."""
    progress = progress or _Silent()
    labels = sorted(set(train_labels))
    unknown = sorted(set(val_labels) - set(labels))
    if unknown:
        raise TrainingError(f"validation labels missing from the training split: {unknown}")
    set_seed(config.seed)
    on_cpu, precision = _mixed_precision(config.device)
    accelerator = Accelerator(cpu=on_cpu, mixed_precision=precision)

    label2id = {label: i for i, label in enumerate(labels)}
    model, tokenizer = _load_base(base_model, labels)
    train_items = _encode(tokenizer, train_texts, train_labels, label2id, config.max_length)
    val_items = _encode(tokenizer, val_texts, val_labels, label2id, config.max_length)
    collate = _collate(tokenizer.pad_token_id or 0)
    sampler = LengthGroupedBatches(
        [len(ids) for ids, _ in train_items], config.batch_size, config.seed
    )
    train_loader: DataLoader[tuple[list[int], int]] = DataLoader(
        train_items,  # type: ignore[arg-type]
        batch_sampler=sampler,
        collate_fn=collate,  # type: ignore[arg-type]
    )

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    total_steps = len(train_loader) * config.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(total_steps * config.warmup_ratio), total_steps
    )
    model, optimizer, train_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, scheduler
    )

    progress.start(total_steps)
    history: list[EpochRecord] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_f1, best_epoch = -1.0, 0
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        train_loss = _train_epoch(model, train_loader, optimizer, scheduler, accelerator, progress)
        val_loss, val_f1 = _validate(accelerator.unwrap_model(model), val_items, collate, config)
        record = EpochRecord(epoch, train_loss, val_loss, val_f1, time.perf_counter() - epoch_start)
        history.append(record)
        progress.epoch_done(record)
        if val_f1 > best_f1:
            best_f1, best_epoch = val_f1, epoch
            unwrapped = accelerator.unwrap_model(model)
            best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in unwrapped.state_dict().items()
            }
    seconds = time.perf_counter() - started

    final = accelerator.unwrap_model(model)
    if best_state is not None:
        final.load_state_dict(best_state)
    final = copy.deepcopy(final).to("cpu").float().eval()
    return FineTuneResult(
        model=final,
        tokenizer=tokenizer,
        labels=labels,
        history=history,
        best_epoch=best_epoch,
        overfitting=overfitting_warning(history),
        seconds=seconds,
        train_examples_per_second=len(train_items) * config.epochs / max(seconds, 1e-9),
        device=str(accelerator.device),
        config=config,
    )


def _load_base(
    base_model: str, labels: list[str]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    source = resolve_base_model(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True,
        )
    except OSError as exc:
        raise TrainingError(
            f"cannot load base model {base_model!r}: {exc}. Without network access, set "
            "REFIT_BASE_MODEL to a local Hugging Face model folder."
        ) from exc
    return model, tokenizer


def _train_epoch(
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


def _validate(
    model: torch.nn.Module,
    items: list[tuple[list[int], int]],
    collate: object,
    config: TrainingConfig,
) -> tuple[float, float]:
    """Validation loss and macro-F1, batches sorted by length for speed."""
    model.eval()
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]))
    device = next(model.parameters()).device
    losses: list[float] = []
    preds = np.empty(len(items), dtype=np.int64)
    gold = np.array([label for _, label in items], dtype=np.int64)
    step = max(config.batch_size, 64)
    with torch.inference_mode():
        for start in range(0, len(order), step):
            idx = order[start : start + step]
            batch = collate([items[i] for i in idx])  # type: ignore[operator]
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                out = model(**batch)
            losses.append(float(out.loss) * len(idx))
            preds[idx] = out.logits.argmax(dim=-1).cpu().numpy()
    model.train()
    loss = sum(losses) / max(len(items), 1)
    return loss, float(f1_score(gold, preds, average="macro", zero_division=0))
