"""Proving that a model version can serve, before anything relies on it.

A version is proven by the code that serves it: its files are checked (every weight
a finite number, `core/finite_weights.py`), it is loaded on its backend
(`core.backends.loading`), and a forward pass runs on a few short texts and must give
one finite probability per label; a backend other than torch that fails this gives
way to torch, which must pass it.
Registration and promotion prove a version on the CPU (`prove_loadable`), so a
truncated or overwritten weight file is refused before it becomes champion; the
server proves it again where it serves (`load_checked`) at startup and before a
hot-swap, since the store can change behind refit's back.

Every refusal is a ModelLoadError whose message names the version by its tag,
never by its folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from refit.core.backends.base import Backend
from refit.core.backends.loading import BackendOptions, load_backend
from refit.core.errors import ModelLoadError
from refit.core.finite_weights import check_finite_weights
from refit.core.load_errors import describe_cause

# Files a served version must carry. Pickled weights (pytorch_model.bin) are
# refused: loading them can run arbitrary code.
REQUIRED_FILES = ("config.json", "model.safetensors", "labels.json")
# Short texts of everyday shape for the proving forward pass; any tokenizer can take them.
PROBE_TEXTS = ("where is my order?", "I was charged twice this month", "ok")
PROBE_MAX_LENGTH = 32


def check_version_files(path: Path, name: str = "the model version") -> list[str]:
    """The label list of a version folder, after checking it can be served safely.

    `name` says which version in messages (`model version NAME:VERSION`).
    """
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ModelLoadError(f"{name} lacks {', '.join(missing)}")
    if any(path.glob("*.bin")) or any(path.glob("*.pt")):
        raise ModelLoadError(f"{name} holds pickled weights; only safetensors are loaded")
    try:
        labels = json.loads((path / "labels.json").read_text())
        config = json.loads((path / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        cause = describe_cause(exc, path)
        raise ModelLoadError(f"{name} has an unreadable JSON file: {cause}") from exc
    id2label = config.get("id2label", {}) if isinstance(config, dict) else {}
    from_config = [str(id2label[k]) for k in sorted(id2label, key=int)] if id2label else []
    if not isinstance(labels, list) or labels != from_config:
        raise ModelLoadError(
            f"{name}: labels.json {labels} does not match the model's label map {from_config}"
        )
    check_finite_weights(path, name)  # NaN or inf in any weight: probe texts may miss it
    return labels


def load_checked(folder: Path, tag: str, options: BackendOptions) -> Backend:
    """Version `tag` in `folder` on its backend, once it has predicted the probe texts."""
    name = f"model version {tag}"
    labels = check_version_files(folder, name)
    try:
        backend = load_backend(
            folder, labels, options, lambda b: _check_forward_pass(b, labels, folder)
        )
    except ModelLoadError as exc:
        raise ModelLoadError(f"{name} cannot be served: {exc}") from exc
    except Exception as exc:  # moving to the device, quantizing: still the version's failure
        raise ModelLoadError(f"{name} cannot be served: {describe_cause(exc, folder)}") from exc
    return backend


def prove_loadable(folder: Path, tag: str) -> None:
    """Raise ModelLoadError unless version `tag` in `folder` loads on the CPU and predicts."""
    load_checked(folder, tag, BackendOptions("torch", "cpu", max_length=PROBE_MAX_LENGTH))


def _check_forward_pass(backend: Backend, labels: list[str], folder: Path) -> None:
    try:
        probs = backend.predict(PROBE_TEXTS).probs
    except Exception as exc:
        cause = describe_cause(exc, folder)
        raise ModelLoadError(f"a forward pass on {len(PROBE_TEXTS)} texts failed: {cause}") from exc
    if probs.shape != (len(PROBE_TEXTS), len(labels)):
        raise ModelLoadError(
            f"a forward pass gave {probs.shape[-1]} scores per text for {len(labels)} labels"
        )
    if not np.isfinite(probs).all():
        raise ModelLoadError("a forward pass gave scores that are not numbers (NaN or inf)")
