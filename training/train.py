"""The training pipeline: data checks -> split -> fine-tune -> evaluate -> register.

Usable as a function (`train`) by the CLI and, later, by the retraining trigger.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.torch_backend import TorchBackend
from refit.core.errors import TrainingError
from refit.core.registry import ModelVersion, Registry
from refit.core.tokenizer_file import same_ids
from refit.training.backend_export import export_and_verify
from refit.training.calibration_folds import cross_fitted_scores
from refit.training.dataset_card import dataset_card
from refit.training.epochs import Progress
from refit.training.evaluate import evaluate_frame
from refit.training.finetune import FineTuneResult, TrainingConfig, fine_tune
from refit.training.model_card import model_card
from refit.training.prepared import PreparedData, prepare_data
from refit.training.reference import ReferenceProfile, build_profile
from refit.training.scores import EvaluationReport
from refit.training.settings import TrainingContext
from refit.training.snapshot import write_snapshot
from refit.training.split import DatasetSplits

logger = logging.getLogger(__name__)


@dataclass
class Trained:
    """A fine-tuned model, registered with its test-split report."""

    version: ModelVersion
    result: FineTuneResult
    test_report: EvaluationReport


@dataclass
class TrainRun(Trained):
    promoted: bool


def train(
    settings: TrainingContext,
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
    prepared = prepare_data(data, settings.training)
    sizes = prepared.splits.sizes()
    note(f"data: {prepared.source}; " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    if prepared.quality.exact_duplicate_rows or prepared.quality.conflicting_texts:
        note(
            f"data quality: {prepared.quality.exact_duplicate_rows} exact duplicates, "
            f"{prepared.quality.near_duplicate_rows} near duplicates, "
            f"{prepared.quality.conflicting_text_count} texts with conflicting labels "
            "(see dataset_card.md)"
        )
    base_model = settings.training.base_model
    trained = fit_and_register(settings, prepared, base_model, progress=progress, note=note)
    registry = Registry.from_settings(settings.core)
    promoted = promote or registry.champion_tag() is None
    if promoted:
        registry.promote(
            trained.version.version, reason="trained with refit train", actor="refit train"
        )
    return TrainRun(trained.version, trained.result, trained.test_report, promoted)


def fit_and_register(
    settings: TrainingContext,
    prepared: PreparedData,
    base_model: str,
    *,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
    balance_classes: bool = False,
) -> Trained:
    """Fine-tune `base_model` on the prepared splits, then evaluate, profile and register
    the result (not promoted): the one path every new version takes.
    `balance_classes`: oversample rare classes in training (`training.class_balance`)."""
    splits = prepared.splits
    config = TrainingConfig.from_settings(settings.training, settings.core.device)
    result, classifier = fine_tuned_classifier(
        splits,
        base_model=base_model,
        config=dataclasses.replace(config, balance_classes=balance_classes),
        max_length=settings.training.max_length,
        progress=progress,
        capture_embeddings=True,
    )
    if result.overfitting:
        note(f"overfitting: {result.overfitting}")
    test_report = evaluate_frame(classifier, splits.test)
    profile = build_profile(
        classifier,
        splits,
        max_rows=settings.training.drift_reference_rows,
        seed=settings.training.seed,
        cross_fitted=cross_fitted_scores(settings, splits, base_model, result.config, note),
    )
    note(f"calibration: fitted on {profile.calibration.n} labelled predictions")
    version = _register(settings, prepared, result, test_report, profile, base_model, note)
    return Trained(version, result, test_report)


def fine_tuned_classifier(
    splits: DatasetSplits,
    *,
    base_model: str,
    config: TrainingConfig,
    max_length: int,
    progress: Progress | None = None,
    capture_embeddings: bool = False,
) -> tuple[FineTuneResult, TorchBackend]:
    """`base_model` fine-tuned on `splits` (the best validation epoch), and the result as
    a classifier in memory: how a new version and the retraining's joint model are made."""
    result = fine_tune(
        splits.train["text"].tolist(),
        splits.train["label"].tolist(),
        splits.validation["text"].tolist(),
        splits.validation["label"].tolist(),
        base_model=base_model,
        config=config,
        progress=progress,
    )
    classifier = TorchBackend(
        result.model,
        TextEncoder(result.tokenizer, max_length),
        device=result.model.device,
        capture_embeddings=capture_embeddings,
    )
    return result, classifier


def _register(
    settings: TrainingContext,
    prepared: PreparedData,
    result: FineTuneResult,
    test_report: EvaluationReport,
    profile: ReferenceProfile,
    base_model: str,
    note: Callable[[str], None],
) -> ModelVersion:
    files = _version_files(settings, prepared, result, test_report, base_model)

    def write(folder: Path) -> None:
        result.model.save_pretrained(folder, safe_serialization=True)
        result.tokenizer.save_pretrained(folder)
        _check_tokenizer_file(folder, result, prepared.splits, settings.training.max_length)
        for name, text in files.items():
            (folder / name).write_text(text)
        profile.write(folder)
        write_snapshot(folder, prepared.splits)
        if settings.training.export_backends:
            _export_backends(folder, settings.training.max_length, note)

    overall = test_report.overall
    metadata = {
        "labels": result.labels,
        "base_model": base_model,
        "data_fingerprint": prepared.fingerprint,
        "max_length": settings.training.max_length,
        "test_macro_f1": round(overall.macro_f1, 4),
        "test_accuracy": round(overall.accuracy, 4),
        "test_ece": round(overall.ece, 4),
        "train_seconds": round(result.seconds, 1),
        "best_epoch": result.best_epoch,
        "reference_rows": len(profile.frame),
        "calibration_rows": profile.calibration.n,
    }
    return Registry.from_settings(settings.core).register(
        write, metadata=metadata, labels={"task": "text-classification"}
    )


def _check_tokenizer_file(
    folder: Path, result: FineTuneResult, splits: DatasetSplits, max_length: int
) -> None:
    """Serving reads the tokenizer from its saved file (`core/tokenizer_file.py`): the
    file must give the ids the model was trained and tested on, or the version is not
    registered."""
    texts = [*splits.validation["text"], *splits.test["text"]]
    # max_length + 1: the encoder asks for one id more, to see truncation.
    differs = same_ids(folder, result.tokenizer, texts, max_length + 1)
    if differs is not None:
        raise TrainingError(
            f"the saved tokenizer.json does not tokenise as training did: {differs}"
        )


def _export_backends(folder: Path, max_length: int, note: Callable[[str], None]) -> None:
    """ONNX graphs, the record of every backend against torch and the card's section on
    them (`backend_export.py`); a failure leaves torch to serve, and says so."""
    try:
        record = export_and_verify(folder, max_length=max_length)
    except Exception as exc:  # registration goes on: torch serves every version
        note(f"backends: not exported ({type(exc).__name__}: {exc}); torch serves this version")
        return
    note(
        f"backends: exported and verified in {record.seconds:.0f} s on the {record.data}; "
        f"auto on a CPU serves {record.auto_cpu}"
    )


def _version_files(
    settings: TrainingContext,
    prepared: PreparedData,
    result: FineTuneResult,
    test_report: EvaluationReport,
    base_model: str,
) -> dict[str, str]:
    """The text files of a version: labels, test metrics, training record and cards."""
    sizes = prepared.splits.sizes()
    card = model_card(
        model_name=settings.core.model_name,
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
    return {
        "labels.json": json.dumps(result.labels),
        "metrics.json": test_report.model_dump_json(indent=2),
        "training.json": json.dumps(training_record, indent=2),
        "model_card.md": card,
        "dataset_card.md": data_card,
    }
