"""Fine-tuning: the batch sampler, the overfitting flag, and learning on real text."""

from __future__ import annotations

from pathlib import Path

import pytest

from refit import datagen
from refit.core.errors import TrainingError
from refit.training.epochs import EpochRecord, overfitting_warning
from refit.training.finetune import TrainingConfig, fine_tune
from refit.training.length_batches import LengthGroupedBatches
from refit.training.scores import classification_metrics
from refit.training.settings import DEFAULT_BASE_MODEL, TrainingSettings


def test_length_grouped_batches_cover_every_index_once_per_epoch() -> None:
    lengths = [(i * 37) % 101 for i in range(500)]
    sampler = LengthGroupedBatches(lengths, batch_size=16, seed=3, pool_batches=4)
    for _ in range(2):
        batches = list(sampler)
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(500))
        assert len(batches) == len(sampler) == 32


def test_length_grouped_batches_have_less_padding_than_random_order() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(640)]
    sampler = LengthGroupedBatches(lengths, batch_size=32, seed=0)
    grouped = sum(len(b) * max(lengths[i] for i in b) for b in sampler)
    plain = sum(32 * max(lengths[i : i + 32]) for i in range(0, 640, 32))
    assert grouped < 0.7 * plain


def test_length_grouped_batches_are_reproducible_and_vary_by_epoch() -> None:
    lengths = list(range(200))
    first = LengthGroupedBatches(lengths, batch_size=8, seed=5)
    second = LengthGroupedBatches(lengths, batch_size=8, seed=5)
    epoch1 = list(first)
    assert epoch1 == list(second)
    assert list(first) != epoch1


def _record(epoch: int, train: float, val: float) -> EpochRecord:
    return EpochRecord(epoch, train, val, 0.5, 1.0)


def test_overfitting_flagged_when_gap_widens_and_validation_loss_rises() -> None:
    history = [_record(1, 1.0, 0.9), _record(2, 0.6, 1.0), _record(3, 0.3, 1.2)]
    warning = overfitting_warning(history)
    assert warning is not None
    assert "validation loss rose" in warning


@pytest.mark.parametrize(
    "history",
    [
        [_record(1, 1.0, 0.9), _record(2, 0.6, 0.7), _record(3, 0.4, 0.6)],  # both fall
        [_record(1, 1.0, 0.9), _record(2, 0.6, 1.0)],  # too few epochs to tell
        [_record(1, 1.0, 0.9), _record(2, 0.6, 1.0), _record(3, 0.5, 0.95)],  # recovers
    ],
)
def test_no_overfitting_flag_on_healthy_or_short_runs(history: list[EpochRecord]) -> None:
    assert overfitting_warning(history) is None


def _keyword_data(n: int) -> tuple[list[str], list[str]]:
    """Two classes a tiny model can separate in a few epochs."""
    texts, labels = [], []
    for i in range(n):
        if i % 2:
            texts.append(f"please refund my payment number {i} today")
            labels.append("billing")
        else:
            texts.append(f"i forgot my password for account {i}")
            labels.append("account")
    return texts, labels


def test_tiny_model_learns_a_separable_task(tiny_base_model: Path) -> None:
    texts, labels = _keyword_data(320)
    config = TrainingConfig.from_settings(
        TrainingSettings(epochs=3, learning_rate=1e-2, batch_size=16, max_length=32, seed=0),
        device="auto",
    )
    result = fine_tune(
        texts[:240],
        labels[:240],
        texts[240:],
        labels[240:],
        base_model=str(tiny_base_model),
        config=config,
    )
    assert len(result.history) == 3
    assert result.labels == ["account", "billing"]
    best = max(result.history, key=lambda r: r.validation_macro_f1)
    assert result.best_epoch == best.epoch
    assert best.validation_macro_f1 >= 0.9
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_validation_labels_unknown_to_training_are_refused(tiny_base_model: Path) -> None:
    with pytest.raises(TrainingError, match="missing from the training split"):
        fine_tune(
            ["a", "b"],
            ["x", "y"],
            ["c"],
            ["z"],
            base_model=str(tiny_base_model),
            config=TrainingConfig.from_settings(TrainingSettings(epochs=1), device="auto"),
        )


@pytest.mark.slow
def test_packaged_minilm_fine_tunes_well_above_chance() -> None:
    """A few dozen steps on the real base model and the built-in data."""
    from refit.core.backends.encoding import TextEncoder
    from refit.core.backends.torch_backend import TorchBackend

    frame = datagen.generate(1400, seed=7)
    train, val = frame.iloc[:1000], frame.iloc[1000:]
    config = TrainingConfig.from_settings(
        TrainingSettings(epochs=1, learning_rate=1e-4, batch_size=32, max_length=96, seed=0),
        device="auto",
    )
    result = fine_tune(
        train["text"].tolist(),
        train["label"].tolist(),
        val["text"].tolist(),
        val["label"].tolist(),
        base_model=DEFAULT_BASE_MODEL,
        config=config,
    )
    classifier = TorchBackend(
        result.model, TextEncoder(result.tokenizer, 96), device=result.model.device
    )
    out = classifier.predict(val["text"].tolist())
    predicted = [classifier.labels[i] for i in out.label_ids]
    metrics = classification_metrics(
        val["label"].tolist(), predicted, out.confidence, list(classifier.labels)
    )
    chance = 1 / len(classifier.labels)
    assert metrics.macro_f1 > 4 * chance, metrics.macro_f1
