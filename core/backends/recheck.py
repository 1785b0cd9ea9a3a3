"""Close calls of an int8 pass, run again on the fp32 graph.

int8 quantization moves every probability a little. Where the model is sure, that
changes nothing; a label can flip only where the top two probabilities lie closer
than int8's error. On refit's default model every int8 recipe registration tries
gave 0.6-4.8% of the test split another label than fp32 did, with errors of up to
0.09-0.39 in probability (`refit models export --force`). So the int8 backend may carry
the fp32 graph beside it: texts whose int8 top-two margin is below the version's
`margin` are passed through fp32 again, and fp32's answer replaces int8's. The few
texts rechecked cost an extra pass; every other text keeps int8's speed.

The margin is chosen per version at registration, on its validation split
(`training/recheck_tuning.py`), and judged with the other candidates on its test
split, so the texts that chose it are not the ones that verify it. The backend's side
is `onnx_backend.Recheck`; here are the sums both sides share.
"""

from __future__ import annotations

import numpy as np


def top_margin(probs: np.ndarray) -> np.ndarray:
    """(n,) the gap between each row's highest and second-highest probability."""
    if probs.shape[1] < 2:
        return np.ones(len(probs), dtype=probs.dtype)
    top_two = np.partition(probs, -2, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def close_calls(probs: np.ndarray, margin: float) -> np.ndarray:
    """Indices of the rows whose top-two margin is below `margin`."""
    return np.flatnonzero(top_margin(probs) < margin)
