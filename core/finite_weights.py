"""Refusing a version whose weights hold NaN or infinity.

A forward pass on a few probe texts does not find them: a NaN in one row of the
embedding matrix (one token's) passed promotion, and every text with that token then
got a NaN score, an arbitrary label and a NULL in the log. So every floating-point
tensor of `model.safetensors` is checked. The file is mapped, not read: safetensors is
a JSON header of dtypes and byte ranges followed by the raw tensors, so each tensor is
viewed in place with numpy, and the check never holds a second copy of the model (nor
needs torch: a version served by ONNX Runtime is checked the same way).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from refit.core.errors import ModelLoadError

WEIGHTS = "model.safetensors"
_FLOATS = {"F16": np.float16, "F32": np.float32, "F64": np.float64}
_BF16_EXPONENT = 0x7F80  # all exponent bits set: inf or NaN in bfloat16
_CHUNK = 1 << 22  # elements checked at once, so a huge tensor is not copied whole


def check_finite_weights(folder: Path, name: str) -> None:
    """Raise ModelLoadError naming the first tensor of `folder`'s weights that holds a
    value that is not a finite number; `name` says which version in the message.

    A file that cannot be read is left to the weights loader, which says why.
    """
    try:
        header, data = _map(folder / WEIGHTS)
    except (OSError, ValueError, OverflowError, struct.error, KeyError, TypeError):
        return  # truncated or overwritten: the weights loader says why
    for key, entry in header.items():
        if key == "__metadata__" or not isinstance(entry, dict):
            continue
        begin, end = entry.get("data_offsets", (0, 0))
        bad = _non_finite(data[begin:end], entry["dtype"])
        if bad:
            raise ModelLoadError(
                f"{name} cannot be served: tensor {key} of {WEIGHTS} holds {bad} values "
                "that are not finite numbers (NaN or inf); retrain the version or "
                "restore its file"
            )


def _map(path: Path) -> tuple[dict[str, dict], np.ndarray]:
    with path.open("rb") as file:
        (size,) = struct.unpack("<Q", file.read(8))
        if size > path.stat().st_size:
            raise ValueError("not a safetensors file: its header runs past its end")
        header = json.loads(file.read(size))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file: its header is not an object")
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + size)
    return header, data


def _non_finite(raw: np.ndarray, dtype: str) -> int:
    if dtype == "BF16":
        values = raw.view(np.uint16)
        check = lambda part: int(((part & _BF16_EXPONENT) == _BF16_EXPONENT).sum())  # noqa: E731
    elif dtype in _FLOATS:
        values = raw.view(_FLOATS[dtype])
        check = lambda part: int(part.size - np.isfinite(part).sum())  # noqa: E731
    else:
        return 0
    return sum(check(values[i : i + _CHUNK]) for i in range(0, values.size, _CHUNK))
