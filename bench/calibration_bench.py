"""How far the label-free accuracy estimate is from the truth, and how often its 95%
interval holds it: calibration methods compared on cached scored predictions.

    python bench/calibration_bench.py --cache DIR/VERSION [--name NAME] [--trials 400]
        [--no-record]

DIR/VERSION is what `BENTOML_HOME=HOME python bench/calibration_data.py --cache DIR
[--data real:DATA]` wrote for HOME's champion: its training snapshot scored split by
split, and same-distribution pools (`pool-base` for the built-in generator,
`pool-holdout` for the Debian benchmark). Everything below runs in seconds.

1. Calibration methods x rows they are fitted on x window size: 20 windows drawn from
   the same-distribution pool (the target's yardstick): mean and worst error of the
   estimate, how many intervals hold the true accuracy, mean interval width. Rows:
   the held-out split (validation and test, what refit used before); the held-out
   split plus the training rows scored by the model that trained on them (no row is
   honest there); with `folds-K.parquet`, the held-out test split plus out-of-fold
   scores of the train and validation rows.
2. The same over `--trials` resampled trials: each draws a calibration set as large as
   the held-out split and a window from the other honest rows (held-out split and
   pool), so the calibration's own luck varies too: coverage over many calibrations.
3. Feedback, with refit's own cross-fitted estimate (`monitoring.drift.estimate`):
   windows of 2,000 pool rows of which 500 received feedback, calibrated on the
   held-out split plus those labels (each labelled row by the other folds;
   calibration_feedback.py); and
   windows of 500 with 0 to 2,000 feedback labels from outside the window, to show
   the interval narrowing toward the window's own spread.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from calibration_feedback import feedback_table
from calibration_methods import Fitted, methods

SIZES = (200, 500, 2000)
WINDOWS = 20
Z95 = 1.96


def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, list[str]]:
    """(snapshot rows with `split`, the same-distribution pool, out-of-fold rows or None,
    the model's labels in probability order)."""
    splits = pd.read_parquet(folder / "splits.parquet")
    pool_path = next(p for p in (folder / "pool-base.parquet", folder / "pool-holdout.parquet")
                     if p.exists())  # fmt: skip
    pool = pd.read_parquet(pool_path)
    folds = sorted(folder.glob("folds-*.parquet"))
    oof = pd.read_parquet(folds[-1]) if folds else None
    labels = json.loads((folder / "model.json").read_text())["labels"]
    for frame in (splits, pool, *([oof] if oof is not None else [])):
        frame["correct"] = frame["label"] == frame["true_label"]
    return splits, pool, oof, list(labels)


def sources(splits: pd.DataFrame, oof: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    held_out = splits[splits["split"] != "train"]
    found = {"held-out split": held_out, "held-out + train rows (self-scored)": splits}
    if oof is not None:
        found["test split + out-of-fold train/validation"] = pd.concat(
            [splits[splits["split"] == "test"], oof], ignore_index=True
        )
    return found


def judge(fitted: Fitted, window: pd.DataFrame) -> tuple[float, float, float]:
    """(estimate - truth, half-width, truth) for one window."""
    expected = fitted.apply(window)
    variance = float((expected * (1 - expected)).mean()) / len(window)
    margin = Z95 * np.sqrt(variance + fitted.variance(window))
    truth = float(window["correct"].mean())
    return float(expected.mean()) - truth, float(margin), truth


def windows(pool: pd.DataFrame, size: int, count: int, seed: int) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    size = min(size, len(pool))
    return [pool.iloc[rng.choice(len(pool), size, replace=False)] for _ in range(count)]


def summary(results: list[tuple[float, float, float]]) -> dict[str, float]:
    errors = np.array([r[0] for r in results])
    margins = np.array([r[1] for r in results])
    return {
        "bias": float(errors.mean()),
        "worst": float(np.abs(errors).max()),
        "covered": float((np.abs(errors) <= margins).mean()),
        "width": float(2 * margins.mean()),
    }


def fixed_table(
    splits: pd.DataFrame,
    pool: pd.DataFrame,
    oof: pd.DataFrame | None,
    fits: dict[str, Callable[[pd.DataFrame], Fitted]],
) -> tuple[str, dict[tuple[str, str, int], dict[str, float]]]:
    lines = [
        "| calibrated on | rows | method | window | bias (mean error) | worst error | "
        "covered (of 20) | interval width |",
        "|---|---|---|---|---|---|---|---|",
    ]
    found = {}
    for source, rows in sources(splits, oof).items():
        for name, fit in fits.items():
            fitted = fit(rows)
            for size in SIZES:
                got = summary([judge(fitted, w) for w in windows(pool, size, WINDOWS, 7)])
                found[(source, name, size)] = got
                lines.append(
                    f"| {source} | {len(rows)} | {name} | {size} | {got['bias']:+.3f} | "
                    f"{got['worst']:.3f} | {round(got['covered'] * WINDOWS)} | "
                    f"{got['width']:.3f} |"
                )
    return "\n".join(lines), found


def resampled_table(
    splits: pd.DataFrame,
    pool: pd.DataFrame,
    fits: dict[str, Callable[[pd.DataFrame], Fitted]],
    trials: int,
) -> tuple[str, dict[tuple[str, int], tuple[float, float]]]:
    """(the table, (method, window) -> (mean error, share covered))."""
    honest = pd.concat([splits[splits["split"] != "train"], pool], ignore_index=True)
    n_cal = int((splits["split"] != "train").sum())
    rng = np.random.default_rng(11)
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for _ in range(trials):
        order = rng.permutation(len(honest))
        calibration, rest = honest.iloc[order[:n_cal]], honest.iloc[order[n_cal:]]
        for name, fit in fits.items():
            fitted = fit(calibration)
            for size in SIZES:
                window = rest.iloc[: min(size, len(rest))]
                results.setdefault((name, size), []).append(judge(fitted, window))
    lines = [
        f"{trials} trials, each calibrated on {n_cal} rows drawn from the {len(honest)} "
        "honest rows (held-out split and pool) and judged on a window of the others.",
        "",
        "| method | window | mean error | RMS error | covered | interval width |",
        "|---|---|---|---|---|---|",
    ]
    found = {}
    for (name, size), got in results.items():
        errors = np.array([r[0] for r in got])
        margins = np.array([r[1] for r in got])
        found[(name, size)] = (float(errors.mean()), float((np.abs(errors) <= margins).mean()))
        lines.append(
            f"| {name} | {size} | {errors.mean():+.4f} | {np.sqrt((errors**2).mean()):.4f} | "
            f"{found[(name, size)][1]:.1%} | {2 * margins.mean():.3f} |"
        )
    return "\n".join(lines), found


def shift_table(
    splits: pd.DataFrame, shifted: pd.DataFrame, fits: dict[str, Callable[[pd.DataFrame], Fitted]]
) -> str:
    """Windows of 500 from a label-shifted pool (Debian's shifted_mix), calibrated on the
    held-out split: where per-class maps could help."""
    held_out = splits[splits["split"] != "train"]
    lines = [
        f"Label shift: 20 windows of 500 from shifted_mix ({len(shifted)} rows, true accuracy "
        f"{shifted['correct'].mean():.3f}), calibrated on the held-out split.",
        "",
        "| method | bias (mean error) | worst error | covered (of 20) | interval width |",
        "|---|---|---|---|---|",
    ]
    for name, fit in fits.items():
        fitted = fit(held_out)
        got = summary([judge(fitted, w) for w in windows(shifted, 500, WINDOWS, 7)])
        lines.append(
            f"| {name} | {got['bias']:+.3f} | {got['worst']:.3f} | "
            f"{round(got['covered'] * WINDOWS)} | {got['width']:.3f} |"
        )
    return "\n".join(lines)


def luck(splits: pd.DataFrame, pool: pd.DataFrame) -> str:
    """How far the held-out split's own accuracy sits from the pool's at about the same
    confidence: the error any map fitted on those rows alone carries into every window."""
    held_out = splits[splits["split"] != "train"]
    gap = held_out["correct"].mean() - pool["correct"].mean()
    spread = np.sqrt(held_out["correct"].mean() * (1 - held_out["correct"].mean()) / len(held_out))
    return (
        f"held-out split: accuracy {held_out['correct'].mean():.3f} at mean confidence "
        f"{held_out['score'].mean():.3f}; pool: {pool['correct'].mean():.3f} at "
        f"{pool['score'].mean():.3f}; the split's own sampling error (1 SE) is "
        f"{spread:.3f}, its gap {gap:+.3f}"
    )


def targets(
    fixed: dict[str, float],
    resampled: tuple[float, float],
    feedback: dict[str, float],
    cross_fitted: dict[str, float] | None = None,
) -> str:
    """The issue's targets for refit's method (binning, no feedback; then with feedback),
    and, with out-of-fold scores, for REFIT_CALIBRATION_FOLDS's calibration."""
    bias, covered = fixed["bias"], round(fixed["covered"] * WINDOWS)
    close = int(feedback["within_003"])
    folds = []
    if cross_fitted is not None:
        cf_bias, cf_covered = cross_fitted["bias"], round(cross_fitted["covered"] * WINDOWS)
        folds = [
            f"- bias, cross-fitted (test split + out-of-fold train/validation, "
            f"REFIT_CALIBRATION_FOLDS): mean error {cf_bias:+.4f} (target at most 0.01: "
            f"{'met' if abs(cf_bias) <= 0.01 else 'missed'}); coverage {cf_covered}/{WINDOWS} "
            f"({'met' if cf_covered / WINDOWS >= 0.93 else 'missed'})",
        ]
    return "\n".join(
        [
            "Targets (binning, refit's method; 20 same-distribution windows of 500):",
            f"- bias, calibrated on the held-out split: mean error {bias:+.4f} (target at most "
            f"0.01: {'met' if abs(bias) <= 0.01 else 'missed'})",
            f"- bias over resampled calibrations of the same size: {resampled[0]:+.4f} "
            f"({'met' if abs(resampled[0]) <= 0.01 else 'missed'})",
            f"- coverage, held-out split: {covered}/{WINDOWS} (target at least 93%: "
            f"{'met' if covered / WINDOWS >= 0.93 else 'missed'}); over resampled "
            f"calibrations {resampled[1]:.1%} ({'met' if resampled[1] >= 0.93 else 'missed'})",
            f"- after 500 feedback labels, windows of 2,000 within 0.03: {close}/{WINDOWS} "
            f"(target at least 19: {'met' if close >= 19 else 'missed'})",
            *folds,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="calibration_data.py output")
    parser.add_argument("--name", default="", help="benchmark name for the heading")
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    splits, pool, oof, labels = load(args.cache)
    model = json.loads((args.cache / "model.json").read_text())
    fits = methods(labels, "probs" in splits.columns and "probs" in pool.columns)
    fixed, found = fixed_table(splits, pool, oof, fits)
    print(fixed, flush=True)
    resampled, over_trials = resampled_table(splits, pool, fits, args.trials)
    print(resampled, flush=True)
    feedback, with_feedback = feedback_table(splits, pool)
    print(feedback, flush=True)
    shifted = ""
    if (args.cache / "pool-shifted_mix.parquet").exists():
        frame = pd.read_parquet(args.cache / "pool-shifted_mix.parquet")
        shifted = shift_table(
            splits, frame.assign(correct=frame["label"] == frame["true_label"]), fits
        )
        print(shifted, flush=True)
    sizes = splits["split"].value_counts().to_dict()
    goals = targets(
        found[("held-out split", "binning", 500)],
        over_trials[("binning", 500)],
        with_feedback,
        found.get(("test split + out-of-fold train/validation", "binning", 500)),
    )
    print(goals, luck(splits, pool), sep="\n", flush=True)
    text = "\n\n".join(
        [
            f"{args.name or args.cache} — model {model['tag']} (test accuracy "
            f"{model.get('test_accuracy')}); snapshot {sizes}; same-distribution pool of "
            f"{len(pool)} rows (true accuracy {pool['correct'].mean():.3f}).",
            goals + "\n\n" + luck(splits, pool) + ".",
            "Fixed calibration, 20 windows from the pool:",
            fixed,
            "Resampled calibrations:",
            resampled,
            "Feedback (refit's cross-fitted estimate with binning):",
            feedback,
            *([shifted] if shifted else []),
        ]
    )
    if not args.no_record:
        from record import record

        record("calibration_bench", text)


if __name__ == "__main__":
    main()
