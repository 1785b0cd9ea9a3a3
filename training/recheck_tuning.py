"""The margin below which an int8 variant's answers are rechecked on fp32 (`recheck.py`).

Chosen on texts the version's test split does not contain (its validation split), from
a few fixed steps, so that the test split still judges the result: the smallest margin
that leaves at most `LEFT_OVER` of the tuning texts labelled unlike fp32: half of
what the agreement rule allows (`core.backends.choice.MIN_AGREEMENT`), the other half
being room for the test split to differ from the validation split. A larger margin
rechecks more texts for little gain, and the largest step bounds what a recheck costs.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from refit.core.backends.choice import MIN_AGREEMENT
from refit.core.backends.recheck import top_margin

STEPS: Final = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2)
LEFT_OVER: Final = (1 - MIN_AGREEMENT) / 2  # share of tuning texts that may still disagree


def tuned_margin(fp32: np.ndarray, int8: np.ndarray) -> float | None:
    """The recheck margin for an int8 variant from both graphs' probabilities on the same
    texts; None where int8 already gives every text fp32's label."""
    disagree = fp32.argmax(axis=1) != int8.argmax(axis=1)
    if not disagree.any():
        return None
    margins = top_margin(int8)
    for step in STEPS:
        if (disagree & (margins >= step)).mean() <= LEFT_OVER:
            return step
    return STEPS[-1]


def share_within(int8: np.ndarray, margin: float) -> float:
    """Share of texts whose int8 top-two margin is below `margin`: those rechecked."""
    return float((top_margin(int8) < margin).mean())
