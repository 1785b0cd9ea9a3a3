"""Detection and false-alarm rates of drift checks, per scenario, with a real model.

    BENTOML_HOME=... python bench/drift_quality.py [--windows 20] [--size 500] [--sampling]

Uses the champion of BENTOML_HOME (train one with `refit train`) and the reference
profile its training wrote. For each built-in scenario a pool of generated texts
(3,000 for base, 1,500 for each drift; seeds other than the training seed) is
scored by the model as the service would log it, and `--windows` random windows of
`--size` predictions drawn from it are checked: the rate of drift verdicts is the
detection rate (the false-alarm rate for base), per signal and combined, and on
base windows the accuracy estimate is compared with the true accuracy.

`--sampling` also measures what sampling a large window costs in detection: windows
of 50,000 predictions (from a pool of 60,000 base texts, scored once and cached:
several minutes with MiniLM on 2 cores) holding a small share of drifted ones are
checked in full and sampled to REFIT_DRIFT_MAX_ROWS (20,000).
Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import datagen  # noqa: E402
from core.inference import TextClassifier  # noqa: E402
from core.registry import Registry  # noqa: E402
from monitoring.drift.check import compare  # noqa: E402
from monitoring.drift.evaluation import (  # noqa: E402
    check_windows,
    detection_rate,
    estimate_errors,
    signal_rates,
)
from monitoring.drift.features import sample_rows  # noqa: E402
from monitoring.drift.signals import verdict  # noqa: E402
from service.settings import Settings  # noqa: E402
from training.reference import ReferenceProfile, score_pool  # noqa: E402

MIXES = (0.02, 0.05, 0.1)
LARGE = 50_000
LARGE_POOLS = {"base": 60_000, "drifted": 5_000}


def pools(
    classifier: TextClassifier, version: str, cache: Path, sizes: dict[str, int], seed: int
) -> dict[str, pd.DataFrame]:
    """A scored pool per scenario of `sizes` rows (cached per model version)."""
    found = {}
    for index, scenario in enumerate(datagen.SCENARIOS):
        rows = sizes.get(scenario, sizes["drifted"])
        path = cache / f"pool-{version}-{scenario}-{rows}-{seed + index}.parquet"
        if not path.exists():
            frame = datagen.generate(rows, scenario=scenario, seed=seed + index)
            started = time.perf_counter()
            score_pool(classifier, frame).to_parquet(path)
            print(f"scored {rows} {scenario} texts in {time.perf_counter() - started:.0f} s")
        found[scenario] = pd.read_parquet(path)
    return found


def rates_table(
    settings: Settings,
    profile: ReferenceProfile,
    scored: dict[str, pd.DataFrame],
    args: argparse.Namespace,
) -> str:
    lines = [
        f"{args.windows} random windows of {args.size} predictions per scenario.",
        "",
        "| scenario | drift verdicts | per signal (share of windows) | s/window |",
        "|---|---|---|---|",
    ]
    errors = np.zeros(0)
    for scenario, pool in scored.items():
        started = time.perf_counter()
        outcomes = check_windows(
            settings, profile, pool, windows=args.windows, size=args.size, seed=7
        )
        seconds = (time.perf_counter() - started) / args.windows
        drifted = round(detection_rate(outcomes) * args.windows)
        per_signal = ", ".join(f"{k} {v:.2f}" for k, v in signal_rates(outcomes).items() if v)
        lines.append(
            f"| {scenario} | {drifted}/{args.windows} | {per_signal or '-'} | {seconds:.2f} |"
        )
        if scenario == "base":
            errors = estimate_errors(outcomes)
            truth = np.mean([o.true_accuracy for o in outcomes])
        print(lines[-1], flush=True)
    lines += [
        "",
        f"Accuracy estimate on base windows (true accuracy {truth:.3f} on average): error "
        f"{errors.mean():+.3f} on average, largest {np.abs(errors).max():.3f}, "
        f"within 0.05 in {(np.abs(errors) <= 0.05).sum()}/{len(errors)} windows.",
    ]
    return "\n".join(lines)


def sampling_table(
    settings: Settings, profile: ReferenceProfile, scored: dict[str, pd.DataFrame], windows: int
) -> str:
    """Detection in full and sampled large windows with a small share of drift."""
    rng = np.random.default_rng(11)
    lines = [
        f"Windows of {LARGE:,} predictions drawn from pools of {len(scored['base']):,} "
        f"base and {len(scored['intent_mix']):,} drifted predictions, {windows} per row: "
        f"checked in full, and sampled to {settings.drift.drift_max_rows:,}.",
        "",
        "| drifted scenario | share drifted | full: drift verdicts | sampled: drift verdicts |",
        "|---|---|---|---|",
    ]
    full = settings.with_overrides(drift_max_rows=LARGE)
    for scenario in datagen.SCENARIOS:
        for share in (0.0,) if scenario == "base" else MIXES:
            counts = {"full": 0, "sampled": 0}
            for _ in range(windows):
                window = mixed_window(scored["base"], scored[scenario], share, rng)
                for name, config in (("full", full), ("sampled", settings)):
                    rows = sample_rows(window, config.drift_max_rows, config.seed)
                    _, signals = compare(config, profile, rows)
                    counts[name] += verdict(signals, len(window), 1) == "drift"
            lines.append(
                f"| {scenario} | {share:.0%} | {counts['full']}/{windows} | "
                f"{counts['sampled']}/{windows} |"
            )
            print(lines[-1], flush=True)
    return "\n".join(lines)


def mixed_window(
    base: pd.DataFrame, drifted: pd.DataFrame, share: float, rng: np.random.Generator
) -> pd.DataFrame:
    moved = int(LARGE * share)
    parts = [
        base.iloc[rng.choice(len(base), size=LARGE - moved, replace=False)],
        drifted.iloc[rng.choice(len(drifted), size=moved, replace=False)],
    ]
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--sampling", action="store_true")
    parser.add_argument("--sampling-windows", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/refit-drift-quality"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    version = Registry.from_settings(settings.core).get()
    profile = ReferenceProfile.read(version.path, version=version.version)
    classifier = TextClassifier.from_folder(
        version.path,
        device="cpu",
        max_length=version.max_length(settings.training.max_length),
        capture_embeddings=True,
    )
    scored = pools(classifier, version.version, args.cache, {"base": 3000, "drifted": 1500}, 1000)
    model = f"{version.tag} ({version.metadata.get('base_model')}, test accuracy " \
        f"{version.metadata.get('test_accuracy')})"  # fmt: skip
    sections = [rates_table(settings, profile, scored, args)]
    if args.sampling:
        # Large windows need pools larger still: repeating a small pool's rows would
        # itself look like drift to every test.
        large = pools(classifier, version.version, args.cache, LARGE_POOLS, 2000)
        sections.append(sampling_table(settings, profile, large, args.sampling_windows))
    text = "\n\n".join(sections)
    print(text)
    from record import record

    record("drift_quality", f"Model {model}.\n\n{text}")


if __name__ == "__main__":
    main()
