"""Retrain the champion on newer labelled data and let the gate decide.

The challenger learns from the champion's own training data (its snapshot) plus
recent labelled data the caller supplies (feedback, new files). Champion and
challenger are then scored on the original test split and on a held-out part of
the recent data, and timed on a fixed batch; `retraining.gate` decides. The
challenger is registered either way, so a refused one can still be inspected or
promoted by hand; only a passed gate makes it champion.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from training.data import validate_labelled
from core.errors import TrainingError
from training.finetune import Progress, fine_tune
from retraining.gate import GateDecision, GateRules, Scores, judge
from core.inference import TextClassifier
from training.scores import classification_metrics
from training.quality import normalized
from core.registry import ModelVersion, Registry
from core.settings import Settings
from training.snapshot import read_snapshot
from training.split import DatasetSplits, split_dataset
from training.train import prepare_frame, register_trained, training_config

logger = logging.getLogger(__name__)

# Texts timed to compare the two models' latency; the same texts every time.
_LATENCY_BATCH = 64
_LATENCY_RUNS = 5


@dataclass
class RetrainResult:
    champion: ModelVersion
    challenger: ModelVersion
    decision: GateDecision
    promoted: bool
    sizes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion.tag,
            "challenger": self.challenger.tag,
            "promoted": self.promoted,
            "decision": self.decision.to_dict(),
            "sizes": self.sizes,
            "seconds": round(self.seconds, 1),
        }


def gate_rules(settings: Settings) -> GateRules:
    return GateRules(
        min_gain_recent=settings.gate_min_gain,
        max_loss_original=settings.gate_max_loss,
        max_latency_ratio=settings.gate_max_latency_ratio,
    )


def fresh_rows(recent: pd.DataFrame, known: DatasetSplits) -> pd.DataFrame:
    """Recent rows whose text the champion's data does not already hold.

    Feedback used by an earlier retrain is in the champion's snapshot; counting it
    again would put training texts into the held-out slice.
    """
    seen = set(normalized(pd.concat([p["text"] for p in known.parts().values()])))
    keep = [key not in seen for key in normalized(recent["text"])]
    return recent[keep].reset_index(drop=True)


def _macro_f1(classifier: TextClassifier, frame: pd.DataFrame) -> float:
    texts = frame["text"].tolist()
    out = classifier.predict(texts)
    predicted = [classifier.labels[i] for i in out.label_ids]
    # Recent data may hold labels the champion never learned: score over the union.
    labels = sorted(set(classifier.labels) | set(frame["label"]))
    return classification_metrics(
        frame["label"].tolist(), predicted, out.confidence, labels
    ).macro_f1


def _batch_seconds(classifier: TextClassifier, texts: list[str]) -> float:
    classifier.predict(texts)  # warm: first calls pay for allocations
    runs = []
    for _ in range(_LATENCY_RUNS):
        started = time.perf_counter()
        classifier.predict(texts)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def score(classifier: TextClassifier, recent: pd.DataFrame, original: pd.DataFrame) -> Scores:
    batch = original["text"].tolist()[:_LATENCY_BATCH]
    return Scores(
        recent_macro_f1=_macro_f1(classifier, recent),
        original_macro_f1=_macro_f1(classifier, original),
        batch_seconds=_batch_seconds(classifier, batch),
    )


def retrain(
    settings: Settings,
    recent: pd.DataFrame,
    *,
    progress: Progress | None = None,
    note: Callable[[str], None] = logger.info,
) -> RetrainResult:
    """Fine-tune a challenger on the champion's data plus `recent`; promote if the gate passes."""
    started = time.perf_counter()
    registry = Registry.from_settings(settings)
    champion = registry.get()
    original = read_snapshot(champion.path)
    recent = validate_labelled(recent, source="recent labelled data")
    recent = fresh_rows(recent, original)
    if len(recent) < settings.retrain_min_rows:
        raise TrainingError(
            f"only {len(recent)} new labelled rows; retraining needs "
            f"REFIT_RETRAIN_MIN_ROWS={settings.retrain_min_rows}"
        )
    parts = split_dataset(
        recent,
        validation_fraction=settings.validation_fraction,
        test_fraction=settings.retrain_holdout_fraction,
        seed=settings.seed,
    )
    splits = DatasetSplits(
        train=pd.concat([original.train, parts.train], ignore_index=True),
        validation=pd.concat([original.validation, parts.validation], ignore_index=True),
        test=original.test,  # carried forward unchanged: the same yardstick every time
    )
    sizes = {
        "original_train": len(original.train),
        "recent_train": len(parts.train),
        "recent_validation": len(parts.validation),
        "recent_holdout": len(parts.test),
        "original_test": len(original.test),
    }
    note("retraining on " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    start = str(champion.path) if settings.retrain_from == "champion" else settings.base_model
    result = fine_tune(
        splits.train["text"].tolist(),
        splits.train["label"].tolist(),
        splits.validation["text"].tolist(),
        splits.validation["label"].tolist(),
        base_model=start,
        config=training_config(settings),
        progress=progress,
    )
    source = f"retrained from {champion.tag} with {len(recent)} new labelled rows"
    prepared = prepare_frame(pd.concat(splits.parts().values(), ignore_index=True), splits, source)
    challenger, _ = register_trained(settings, prepared, result, base_model=start, note=note)
    max_length = champion.max_length(settings.max_length)
    old = TextClassifier.from_folder(champion.path, device=settings.device, max_length=max_length)
    new = TextClassifier.from_folder(
        challenger.path, device=settings.device, max_length=settings.max_length
    )
    decision = judge(
        score(old, parts.test, original.test),
        score(new, parts.test, original.test),
        gate_rules(settings),
    )
    if decision.promote:
        registry.promote(challenger.version, reason="retrain: gate passed", actor="refit retrain")
    return RetrainResult(
        champion, challenger, decision, decision.promote, sizes, time.perf_counter() - started
    )
