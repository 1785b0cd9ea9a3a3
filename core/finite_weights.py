"""Refusing a version whose weights hold NaN or infinity.

A forward pass on a few probe texts does not find them: a NaN in one row of the
embedding matrix (one token's) passed promotion, and every text with that token then
got a NaN score, an arbitrary label and a NULL in the log. So every floating-point
tensor of `model.safetensors` is checked, one at a time: safetensors maps the file
and reads each tensor on its own, so the check holds one tensor in memory, never a
second copy of the model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open

from refit.core.errors import ModelLoadError

WEIGHTS = "model.safetensors"


def check_finite_weights(folder: Path, name: str) -> None:
    """Raise ModelLoadError naming the first tensor of `folder`'s weights that holds a
    value that is not a finite number; `name` says which version in the message.

    A file that cannot be read is left to the weights loader, which says why.
    """
    try:
        weights = safe_open(str(folder / WEIGHTS), framework="pt")
    except Exception:  # truncated or overwritten: `load_step("weights", ...)` reports it
        return
    with weights:
        for key in weights.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
            bad = _non_finite(weights.get_tensor(key))
            if bad:
                raise ModelLoadError(
                    f"{name} cannot be served: tensor {key} of {WEIGHTS} holds {bad} values "
                    "that are not finite numbers (NaN or inf); retrain the version or "
                    "restore its file"
                )


def _non_finite(tensor: torch.Tensor) -> int:
    if not tensor.is_floating_point():
        return 0
    return int(tensor.numel() - torch.isfinite(tensor).sum())
