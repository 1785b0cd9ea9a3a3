"""The training pipeline: data checks -> split -> fine-tune -> evaluate -> register.

Usable as a function (`train`) by the CLI and, later, by the retraining trigger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import datagen
from training.data import load_labelled, validate_labelled
from training.dataset_card import dataset_card
from training.evaluate import evaluate_frame
from training.finetune import FineTuneResult, Progress, TrainingConfig, fine_tune
from core.inference import TextClassifier
from training.scores import EvaluationReport
from training.model_card import model_card
from training.quality import QualityReport, audit, fingerprint, leakage
from training.reference import ReferenceProfile, build_profile
from core.registry import ModelVersion, Registry
from core.settings import Settings
from training.snapshot import write_snapshot
from training.split import DatasetSplits, split_dataset

logger = logging.getLogger(__name__)

GENERATED_SOURCE = "built-in generated customer-support messages"


@dataclass
class PreparedData:
    frame: pd.DataFrame
    source: str
    splits: DatasetSplits
    quality: QualityReport
    fingerprint: str
    leakage: dict[str, int]


@dataclass
class TrainRun:
    version: ModelVersion
    result: FineTuneResult
    test_report: EvaluationReport
    promoted: bool


def load_training_frame(data: Path | None, settings: Settings) -> tuple[pd.DataFrame, str]:
    """The user's labelled file, or the built-in dataset when none is given."""
    if data is not None:
        frame = load_labelled(
            data,
            text_column=settings.text_column,
            label_column=settings.label_column,
            min_examples_per_class=settings.min_examples_per_class,
        )
        return frame, str(data)
    generated = datagen.generate(settings.generated_rows, scenario="base", seed=settings.seed)
    frame = validate_labelled(
        generated.drop(columns=["scenario"]),
        source="<generated>",
        min_examples_per_class=settings.min_examples_per_class,
    )
    return frame, f"{GENERATED_SOURCE} ({settings.generated_rows} rows, seed {settings.seed})"


def prepare_data(data: Path | None, settings: Settings) -> PreparedData:
    frame, source = load_training_frame(data, settings)
    splits = split_dataset(
        frame,
        validation_fraction=settings.validation_fraction,
        test_fraction=settings.test_fraction,
        seed=settings.seed,
    )
    return prepare_frame(frame, splits, source)


def prepare_frame(frame: pd.DataFrame, splits: DatasetSplits, source: str) -> PreparedData:
    """Audit an already split frame (the retraining job brings its own splits)."""
    return PreparedData(
        frame=frame,
        source=source,
        splits=splits,
        quality=audit(frame),
        fingerprint=fingerprint(frame),
        leakage=leakage(splits),
    )


def training_config(settings: Settings) -> TrainingConfig:
    return TrainingConfig(
        epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        max_length=settings.max_length,
        seed=settings.seed,
        device=settings.device,
    )


def train(
    settings: Settings,
    *,
    data: Path | None = None,
    promote: bool = False,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
) -> TrainRun:
    """Fine-tune on `data` (or the built-in set), evaluate, register a new version.

    The new version becomes champion when `promote` is set or when the model has
    no champion yet; otherwise the serving champion is left alone.
    """
    prepared = prepare_data(data, settings)
    sizes = prepared.splits.sizes()
    note(f"data: {prepared.source}; " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if prepared.quality.exact_duplicate_rows or prepared.quality.conflicting_texts:
        note(
            f"data quality: {prepared.quality.exact_duplicate_rows} exact duplicates, "
            f"{prepared.quality.near_duplicate_rows} near duplicates, "
            f"{prepared.quality.conflicting_text_count} texts with conflicting labels "
            "(see dataset_card.md)"
        )
    splits = prepared.splits
    result = fine_tune(
        splits.train["text"].tolist(),
        splits.train["label"].tolist(),
        splits.validation["text"].tolist(),
        splits.validation["label"].tolist(),
        base_model=settings.base_model,
        config=training_config(settings),
        progress=progress,
    )
    version, test_report = register_trained(
        settings, prepared, result, base_model=settings.base_model, note=note
    )
    registry = Registry.from_settings(settings)
    promoted = promote or registry.champion_tag() is None
    if promoted:
        registry.promote(version.version, reason="trained with refit train", actor="refit train")
    return TrainRun(version, result, test_report, promoted)


def register_trained(
    settings: Settings,
    prepared: PreparedData,
    result: FineTuneResult,
    *,
    base_model: str,
    note: Callable[[str], None] = logger.info,
) -> tuple[ModelVersion, EvaluationReport]:
    """Evaluate a fine-tuned model on the test split, profile it, register it (not promoted)."""
    if result.overfitting:
        note(f"overfitting: {result.overfitting}")
    classifier = TextClassifier(
        result.model,
        result.tokenizer,
        max_length=settings.max_length,
        device=result.model.device,
        capture_embeddings=True,
    )
    splits = prepared.splits
    test_report = evaluate_frame(classifier, splits.test)
    profile = build_profile(
        classifier, splits, max_rows=settings.drift_reference_rows, seed=settings.seed
    )
    version = _register(settings, prepared, result, test_report, profile, base_model)
    return version, test_report


def _register(
    settings: Settings,
    prepared: PreparedData,
    result: FineTuneResult,
    test_report: EvaluationReport,
    profile: ReferenceProfile,
    base_model: str,
) -> ModelVersion:
    sizes = prepared.splits.sizes()
    card = model_card(
        model_name=settings.model_name,
        base_model=base_model,
        data_source=prepared.source,
        fingerprint=prepared.fingerprint,
        split_sizes=sizes,
        result=result,
        test_report=test_report,
    )
    data_card = dataset_card(
        prepared.frame,
        prepared.splits,
        prepared.quality,
        source=prepared.source,
        fingerprint=prepared.fingerprint,
        leakage=prepared.leakage,
    )
    training_record = {
        **result.summary(),
        "base_model": base_model,
        "data_source": prepared.source,
        "data_fingerprint": prepared.fingerprint,
        "split_sizes": sizes,
        "data_quality": prepared.quality.to_dict(),
        "leakage": prepared.leakage,
    }

    def write(folder: Path) -> None:
        result.model.save_pretrained(folder, safe_serialization=True)
        result.tokenizer.save_pretrained(folder)
        (folder / "labels.json").write_text(json.dumps(result.labels))
        (folder / "metrics.json").write_text(test_report.model_dump_json(indent=2))
        (folder / "training.json").write_text(json.dumps(training_record, indent=2))
        (folder / "model_card.md").write_text(card)
        (folder / "dataset_card.md").write_text(data_card)
        profile.write(folder)
        write_snapshot(folder, prepared.splits)

    overall = test_report.overall
    metadata = {
        "labels": result.labels,
        "base_model": base_model,
        "data_fingerprint": prepared.fingerprint,
        "max_length": settings.max_length,
        "test_macro_f1": round(overall.macro_f1, 4),
        "test_accuracy": round(overall.accuracy, 4),
        "test_ece": round(overall.ece, 4),
        "train_seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "reference_rows": len(profile.frame),
    }
    return Registry.from_settings(settings).register(
        write, metadata=metadata, labels={"task": "text-classification"}
    )
