"""A tiny version folder exported to every backend, for the tests of `core.backends`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import torch
from tiny_versions import tiny_classifier
from transformers import AutoTokenizer

from refit import datagen
from refit.core.backends.loading import BackendOptions, load_backend
from refit.core.backends.record import BackendRecord
from refit.core.registry import ModelVersion, Registry
from refit.service.settings import Settings
from refit.training.backend_export import export_and_verify

LABELS = ["alpha", "beta", "gamma"]
# Every backend, as REFIT_BACKEND (and, for torch, REFIT_FORWARD_PASS) loads it.
BACKENDS = {
    "torch-eager": BackendOptions("torch", "cpu", max_length=32, capture_embeddings=True),
    "torch-traced": BackendOptions(
        "torch", "cpu", max_length=32, capture_embeddings=True, trace=True
    ),
    "torch-int8": BackendOptions(
        "torch-int8", "cpu", max_length=32, capture_embeddings=True, trace=True
    ),
    "onnx-fp32": BackendOptions("onnx", "cpu", max_length=32, capture_embeddings=True),
    "onnx-int8": BackendOptions("onnx-int8", "cpu", max_length=32, capture_embeddings=True),
}


def write_spread_version(base: Path, folder: Path, seed: int = 1) -> None:
    """The tiny model, fitted for a few steps to generated texts (their intents folded into
    three labels), and its tokenizer. A random head scores every text almost alike, and
    its labels then flip on rounding noise; these are confident and differ from text
    to text, so that comparisons between backends mean something."""
    model = tiny_classifier(base, LABELS, seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    frame = datagen.generate(96, seed=seed)
    intents = sorted(set(frame["label"]))
    target = torch.tensor([intents.index(x) % len(LABELS) for x in frame["label"]])
    batch = tokenizer(
        frame["text"].tolist(), padding=True, truncation=True, max_length=32, return_tensors="pt"
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        model(**batch, labels=target).loss.backward()
        optimizer.step()
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "labels.json").write_text(json.dumps(LABELS))


def register_spread_version(
    base: Path, folder: Path, name: str, **settings: Any
) -> tuple[Settings, Registry, ModelVersion]:
    """`write_spread_version` registered, not exported, as model `name` (made unique) in
    a state folder under `folder`, on the CPU; `settings` adds to or overrides those."""
    chosen = Settings(
        **{
            "model_name": f"{name}-{uuid.uuid4().hex[:8]}",
            "state_dir": folder / "state",
            "device": "cpu",
            **settings,
        }
    )
    registry = Registry.from_settings(chosen.core)
    version = registry.register(
        lambda target: write_spread_version(base, target), metadata={"labels": LABELS}
    )
    return chosen, registry, version


def exported_version(base: Path, folder: Path) -> BackendRecord:
    """`write_spread_version`, exported and verified as registration does it."""
    write_spread_version(base, folder)
    return export_and_verify(folder, max_length=32)


def load(folder: Path, name: str):
    return load_backend(folder, LABELS, BACKENDS[name])
