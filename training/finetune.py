"""Fine-tune a pretrained encoder into a text classifier.

A plain PyTorch loop driven by Hugging Face Accelerate: the same code runs on a
CPU, one GPU (bf16 autocast), or several GPUs under `accelerate launch` /
`torchrun`. Batches are padded to their longest item and drawn from groups of
similar length (`training.length_batches`). The epoch with the best validation
macro-F1 is kept.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
    set_seed,
)

from refit.core.backends.torch_backend import resolve_device
from refit.core.errors import ModelLoadError, TrainingError
from refit.training.base_model import resolve_base_model
from refit.training.class_balance import oversampled
from refit.training.epochs import EpochRecord, Progress, Silent, overfitting_warning, train_epoch
from refit.training.epochs import validate as validate_epoch
from refit.training.head_probe import ProbeResult, probe_new_rows
from refit.training.label_head import can_carry_over, config_labels, regrow_head
from refit.training.length_batches import (
    Collate,
    Item,
    LengthGroupedBatches,
    collate_padded,
    encode_labelled,
)
from refit.training.settings import TrainingSettings

# Optimiser details that are not user settings: AdamW's usual weight decay and a
# linear warm-up over the first tenth of the steps.
WEIGHT_DECAY = 0.01
WARMUP_RATIO = 0.1


@dataclass(frozen=True)
class TrainingConfig:
    """One fine-tuning run's knobs, taken from the training settings."""

    epochs: int
    learning_rate: float
    batch_size: int
    max_length: int
    seed: int
    device: str
    weight_decay: float = WEIGHT_DECAY
    warmup_ratio: float = WARMUP_RATIO
    balance_classes: bool = False  # oversample rare classes (`training.class_balance`)

    @classmethod
    def from_settings(cls, training: TrainingSettings, device: str) -> TrainingConfig:
        return cls(
            epochs=training.epochs,
            learning_rate=training.learning_rate,
            batch_size=training.batch_size,
            max_length=training.max_length,
            seed=training.seed,
            device=device,
        )


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
    config: TrainingConfig
    probe: ProbeResult | None = None  # new head rows fitted before the epochs (`head_probe`)

    def summary(self) -> dict[str, object]:
        return {
            "config": asdict(self.config),
            "history": [asdict(r) for r in self.history],
            "best_epoch": self.best_epoch,
            "overfitting": self.overfitting,
            "seconds": round(self.seconds, 2),
            "train_examples_per_second": round(self.train_examples_per_second, 1),
            "device": self.device,
            "head_probe": asdict(self.probe) if self.probe is not None else None,
        }


@dataclass
class _Run:
    """What the epochs loop needs, prepared by Accelerate."""

    accelerator: Accelerator
    model: Any
    optimizer: Any
    loader: Any
    scheduler: Any
    total_steps: int
    collate: Collate


def _mixed_precision(device: str) -> tuple[bool, str]:
    """(use the CPU, mixed precision mode) for Accelerate."""
    try:
        on_cpu = resolve_device(device).type == "cpu"
    except ModelLoadError as exc:
        raise TrainingError(str(exc)) from exc
    return on_cpu, ("no" if on_cpu else "bf16")


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
    progress = progress or Silent()
    labels = sorted(set(train_labels))
    unknown = sorted(set(val_labels) - set(labels))
    if unknown:
        raise TrainingError(f"validation labels missing from the training split: {unknown}")
    set_seed(config.seed)
    label2id = {label: i for i, label in enumerate(labels)}
    model, tokenizer, carried = _load_base(base_model, labels)
    train_items = encode_labelled(tokenizer, train_texts, train_labels, label2id, config.max_length)
    val_items = encode_labelled(tokenizer, val_texts, val_labels, label2id, config.max_length)
    started = time.perf_counter()  # the probe's passes count as fine-tuning time
    probe = None
    new_ids = [label2id[label] for label in labels if carried and label not in carried]
    if new_ids:
        collate = collate_padded(tokenizer.pad_token_id or 0)
        probe = probe_new_rows(
            model, train_items, new_ids, collate, seed=config.seed, batch_size=config.batch_size
        )
    if config.balance_classes:
        train_items = oversampled(train_items, config.seed)
    run = _prepare(model, train_items, tokenizer.pad_token_id or 0, config)
    history, best_epoch, best_state = _run_epochs(run, val_items, config, progress)
    seconds = time.perf_counter() - started
    final = run.accelerator.unwrap_model(run.model)
    if best_state is not None:
        final.load_state_dict(best_state)
    return FineTuneResult(
        model=copy.deepcopy(final).to("cpu").float().eval(),
        tokenizer=tokenizer,
        labels=labels,
        history=history,
        best_epoch=best_epoch,
        overfitting=overfitting_warning(history),
        seconds=seconds,
        train_examples_per_second=len(train_items) * config.epochs / max(seconds, 1e-9),
        device=str(run.accelerator.device),
        config=config,
        probe=probe,
    )


def _prepare(
    model: PreTrainedModel, items: list[Item], pad_id: int, config: TrainingConfig
) -> _Run:
    on_cpu, precision = _mixed_precision(config.device)
    accelerator = Accelerator(cpu=on_cpu, mixed_precision=precision)
    sampler = LengthGroupedBatches([len(ids) for ids, _ in items], config.batch_size, config.seed)
    collate = collate_padded(pad_id)
    loader: DataLoader[Item] = DataLoader(
        items,  # type: ignore[arg-type]
        batch_sampler=sampler,
        collate_fn=collate,
    )
    optimizer = _adamw(model, config)
    total_steps = len(loader) * config.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(total_steps * config.warmup_ratio), total_steps
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    return _Run(accelerator, model, optimizer, loader, scheduler, total_steps, collate)


def _adamw(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW as one fused kernel over all parameters where torch has one for the device.

    torch's default on a CPU updates each parameter tensor in a Python loop of
    elementwise ops: on MiniLM (22.7M parameters, one thread) 160-190 ms a step against
    21 ms fused, the same update (`python bench/adamw_step.py`), which is a large share of a
    CPU fine-tuning step."""
    rate, decay = config.learning_rate, config.weight_decay
    try:
        return torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=decay, fused=True)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=decay)


def _run_epochs(
    run: _Run, val_items: list[Item], config: TrainingConfig, progress: Progress
) -> tuple[list[EpochRecord], int, dict[str, torch.Tensor] | None]:
    """Every epoch's record, the best epoch, and a CPU copy of its weights."""
    progress.start(run.total_steps)
    history: list[EpochRecord] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_f1, best_epoch = -1.0, 0
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        loss = train_epoch(
            run.model, run.loader, run.optimizer, run.scheduler, run.accelerator, progress
        )
        unwrapped = run.accelerator.unwrap_model(run.model)
        val_loss, val_f1 = validate_epoch(unwrapped, val_items, run.collate, config.batch_size)
        record = EpochRecord(epoch, loss, val_loss, val_f1, time.perf_counter() - epoch_start)
        history.append(record)
        progress.epoch_done(record)
        if val_f1 > best_f1:
            best_f1, best_epoch = val_f1, epoch
            best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in unwrapped.state_dict().items()
            }
    return history, best_epoch, best_state


def _load_base(
    base_model: str, labels: list[str]
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, list[str]]:
    """(model, tokenizer, the labels whose trained head rows it kept: [] for a fresh head)."""
    source = resolve_base_model(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        config = AutoConfig.from_pretrained(source)
        known = _known_labels(config)
        carried = known if can_carry_over(known, labels) else []
        if carried:
            model = AutoModelForSequenceClassification.from_pretrained(source, config=config)
            regrow_head(model, labels)
        else:
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
    return model, tokenizer, carried


def _known_labels(config: PretrainedConfig) -> list[str]:
    """The labels of a trained classifier's config; [] for a bare encoder's."""
    if not config.architectures or not any(
        name.endswith("ForSequenceClassification") for name in config.architectures
    ):
        return []
    return config_labels(config)
