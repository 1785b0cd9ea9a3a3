"""How well the drift check works: detection and false-alarm rates on scored windows.

Used by the quality tests and `bench/drift_quality.py`, and usable on one's own
data: score a labelled pool with the model the way the service would log it, draw
random windows from it, check each against the reference profile, and count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from refit.monitoring.drift.check import compare
from refit.monitoring.drift.estimate import estimate_window, labelled_rows
from refit.monitoring.drift.signals import SignalResult, verdict
from refit.monitoring.settings import MonitoringContext
from refit.training.reference import ReferenceProfile


@dataclass(frozen=True)
class WindowOutcome:
    status: str
    signals: list[SignalResult]
    estimated_accuracy: float
    true_accuracy: float
    estimated_margin: float = 0.0  # half-width of the estimate's 95% interval

    @property
    def drifted(self) -> bool:
        return self.status == "drift"


def check_windows(
    settings: MonitoringContext,
    profile: ReferenceProfile,
    pool: pd.DataFrame,
    *,
    windows: int,
    size: int,
    seed: int,
) -> list[WindowOutcome]:
    """Check `windows` random windows of `size` rows drawn (without replacement within
    a window) from `pool` against `profile`."""
    rng = np.random.default_rng(seed)
    drawn = [
        pool.iloc[rng.choice(len(pool), size=size, replace=False)].reset_index(drop=True)
        for _ in range(windows)
    ]
    return evaluate_windows(settings, profile, drawn)


def evaluate_windows(
    settings: MonitoringContext, profile: ReferenceProfile, windows: Sequence[pd.DataFrame]
) -> list[WindowOutcome]:
    """Check each of `windows` (scored log rows with `true_label`) against `profile`; the
    accuracy estimate is calibrated on the profile's held-out rows alone (no feedback)."""
    outcomes = []
    labelled = labelled_rows(profile.frame)
    for rows in windows:
        _, signals = compare(settings, profile, rows)
        estimate = estimate_window(labelled, rows)
        outcomes.append(
            WindowOutcome(
                status=verdict(signals, len(rows), settings.drift.drift_min_window_size),
                signals=signals,
                estimated_accuracy=float(estimate.value or 0.0),
                true_accuracy=float((rows["label"] == rows["true_label"]).mean()),
                estimated_margin=float(estimate.margin or 0.0),
            )
        )
    return outcomes


def detection_rate(outcomes: Sequence[WindowOutcome]) -> float:
    """Share of windows with a drift verdict (the false-alarm rate on undrifted data)."""
    return sum(outcome.drifted for outcome in outcomes) / max(len(outcomes), 1)


def signal_rates(outcomes: Sequence[WindowOutcome]) -> dict[str, float]:
    """Per signal, the share of windows in which it drifted."""
    names = [signal.name for signal in outcomes[0].signals] if outcomes else []
    return {
        name: sum(any(s.name == name and s.drifted for s in o.signals) for o in outcomes)
        / len(outcomes)
        for name in names
    }


def estimate_errors(outcomes: Sequence[WindowOutcome]) -> np.ndarray:
    """Estimated minus true accuracy, per window."""
    return np.array([o.estimated_accuracy - o.true_accuracy for o in outcomes])
