"""The feedback part of calibration_bench.py: refit's own cross-fitted estimate
(`monitoring.drift.estimate`) on pool windows with feedback labels, from inside the
window (each labelled row calibrated by the other folds) or from outside it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from refit.monitoring.drift.estimate import estimate_window, labelled_rows

WINDOWS = 20
Z95 = 1.96


def as_log(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Scored rows as the estimate reads log rows: `id`, `label`, `score`, `true_label`."""
    ids = [f"{prefix}{i}" for i in range(len(frame))]
    return frame.assign(id=ids).loc[:, ["id", "label", "score", "true_label", "correct"]]


def reference_of(splits: pd.DataFrame) -> pd.DataFrame:
    """A reference profile's frame: the held-out split as its `outputs` rows."""
    held_out = splits[splits["split"] != "train"].reset_index(drop=True)
    return held_out.assign(outputs=True).loc[:, ["label", "score", "true_label", "outputs"]]


def feedback_runs(
    reference: pd.DataFrame, pool: pd.DataFrame, size: int, labelled: int, inside: bool, seed: int
) -> list[tuple[float, float, float, float, int]]:
    """20 windows of `size` pool rows with `labelled` feedback labels, from inside the
    window or from the rest of the pool: (error, half-width, truth, own spread, rows)."""
    rng = np.random.default_rng(seed)
    rows = as_log(pool.reset_index(drop=True), "log-")
    found = []
    for _ in range(WINDOWS):
        order = rng.permutation(len(rows))
        window = rows.iloc[order[:size]]
        source = window if inside else rows.iloc[order[size:]]
        feedback = source.iloc[: min(labelled, len(source))]
        calibration = labelled_rows(reference, feedback)
        got = estimate_window(calibration, window)
        assert got.value is not None
        assert got.margin is not None
        truth = float(window["correct"].mean())
        g = np.clip(got.value, 0, 1)
        own = Z95 * np.sqrt(g * (1 - g) / size)
        found.append((got.value - truth, got.margin, truth, float(own), got.calibration_rows))
    return found


def feedback_table(splits: pd.DataFrame, pool: pd.DataFrame) -> tuple[str, dict[str, float]]:
    reference = reference_of(splits)
    size = min(2000, len(pool))
    inside = feedback_runs(reference, pool, size, 500, inside=True, seed=5)
    errors = np.array([r[0] for r in inside])
    margins = np.array([r[1] for r in inside])
    close = int((np.abs(errors) <= 0.03).sum())
    head = (
        f"Windows of {size} rows, 500 of them with feedback, cross-fitted ({WINDOWS} windows, "
        f"calibrated on {inside[0][4]} rows): estimate within 0.03 of the truth in "
        f"{close}/{WINDOWS}; mean error {errors.mean():+.4f}, worst {np.abs(errors).max():.4f}; "
        f"interval holds the truth in {(np.abs(errors) <= margins).sum()}/{WINDOWS}, "
        f"width {2 * margins.mean():.3f}."
    )
    lines = [
        head,
        "",
        "| window | feedback labels (outside the window) | calibration rows | mean error | "
        "covered (of 20) | interval width | window's own spread |",
        "|---|---|---|---|---|---|---|",
    ]
    for labelled in (0, 500, 1000, 2000):
        if labelled and len(pool) - 500 < labelled:
            continue
        got = feedback_runs(reference, pool, 500, labelled, inside=False, seed=9)
        e = np.array([r[0] for r in got])
        m = np.array([r[1] for r in got])
        lines.append(
            f"| 500 | {labelled} | {got[0][4]} | {e.mean():+.4f} | "
            f"{(np.abs(e) <= m).sum()} | {2 * m.mean():.3f} | "
            f"{2 * np.mean([r[3] for r in got]):.3f} |"
        )
    return "\n".join(lines), {"within_003": close, "mean_error": float(errors.mean())}
