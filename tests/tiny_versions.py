"""Registered versions built from the tiny model (refit.testing.tiny_models) without
training, and the gauge that says which of them a worker serves."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bentoml
import torch
from prometheus_client import REGISTRY
from safetensors.torch import load_file, save_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from refit.core.registry import ModelVersion, Registry
from refit.monitoring.prediction_log import PredictionLog
from refit.service.model.predictor import ServedModel
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.settings import Settings


def tiny_classifier(base: Path, labels: list[str], seed: int) -> PreTrainedModel:
    """The tiny model in `base` with a head for `labels`, seeded by `seed`."""
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def write_tiny_version(base: Path, labels: list[str], seed: int = 0) -> Callable[[Path], None]:
    """A `Registry.register` writer: the tiny model with a random head for `labels`."""

    def write(folder: Path) -> None:
        model = tiny_classifier(base, labels, seed)
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(base).save_pretrained(folder)
        (folder / "labels.json").write_text(json.dumps(labels))

    return write


def write_poisoned_version(
    base: Path, labels: list[str], token: str, value: float
) -> Callable[[Path], None]:
    """A writer of the tiny model whose embedding row of `token` is all `value`: NaN or
    inf, or a finite value so large that the row overflows to NaN in a forward pass."""
    plain = write_tiny_version(base, labels)

    def write(folder: Path) -> None:
        plain(folder)
        weights = folder / "model.safetensors"
        tensors = load_file(weights)
        row = AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids(token)
        key = next(k for k in tensors if k.endswith("word_embeddings.weight"))
        tensors[key][row] = value
        save_file(tensors, weights, metadata={"format": "pt"})

    return write


def force_version(registry: Registry, write: Callable[[Path], None]) -> ModelVersion:
    """A version put into the store without registration's checks, as a hand copy or a
    store changed behind refit's back would put it there."""
    with bentoml.models.create(registry.name, metadata={}) as model:
        write(Path(model.path))
    return registry.get(model.tag.version)


def register_tiny_versions(
    registry: Registry,
    base: Path,
    labels: list[str],
    count: int,
    metadata: dict[str, Any] | None = None,
) -> list[ModelVersion]:
    """`count` tiny versions for `labels` (seeds 0, 1, ...) registered in `registry`."""
    return [
        registry.register(write_tiny_version(base, labels, seed), metadata=metadata or {})
        for seed in range(count)
    ]


def served_registry(
    tmp_path: Path, base: Path, labels: list[str], prefix: str, count: int = 3, **more: Any
) -> tuple[Settings, Registry, list[ModelVersion]]:
    """Settings of a CPU service without monitoring that looks for a new champion every
    0.1 s, under a fresh model name starting with `prefix`; its registry; and `count`
    tiny versions registered there, none of them promoted. These versions have no ONNX
    export, and the settings make none at load (REFIT_EXPORT_BACKENDS=false: torch
    serves) unless `more` says otherwise."""
    values: dict[str, Any] = {
        "model_name": f"{prefix}-{uuid.uuid4().hex[:8]}",
        "state_dir": tmp_path / "state",
        "device": "cpu",
        "monitoring": False,
        "reload_interval_s": 0.1,
        "export_backends": False,
    }
    settings = Settings(**{**values, **more})
    registry = Registry.from_settings(settings.core)
    return settings, registry, register_tiny_versions(registry, base, labels, count)


def fallback_gauge(champion: ModelVersion, serving: ModelVersion) -> float | None:
    """`refit_model_fallback` for a worker serving `serving` in place of `champion`."""
    labels = {"champion": champion.version, "serving": serving.version}
    return REGISTRY.get_sample_value("refit_model_fallback", labels)


@contextmanager
def running_handler(
    version: ModelVersion, settings: Settings, folder: Path
) -> Iterator[ClassifyHandler]:
    """A started classify handler serving `version`, logging to a SQLite file in
    `folder`; closed, with its log, on exit."""
    log = PredictionLog(f"sqlite:///{folder / 'log.sqlite3'}")
    log.start()
    handler = ClassifyHandler(ServedModel.load(version, settings), settings, log=log)
    handler.start_scheduler()
    try:
        yield handler
    finally:
        handler.close()
        log.close()
