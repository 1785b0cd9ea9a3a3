"""Detection and false-alarm rates of drift checks, per scenario, with a real model.

    BENTOML_HOME=... python bench/drift_quality.py [--windows 20] [--sizes 200,500,2000]
        [--data builtin | --data real:DIR] [--sampling]

Uses the champion of BENTOML_HOME and the reference profile its training wrote. With
`--data builtin` (the default; train with `refit train`) each built-in scenario gives a
pool of generated texts (3,000 for base, 1,500 for each drift; seeds other than the
training seed). With `--data real:DIR` the pools are the Debian real-text benchmark's
files in DIR (`python bench/real_text.py --out DIR`; train on DIR/train.csv): the
same-distribution holdout, unseen sections, a shifted section mix, long descriptions,
and holdout windows with 30% of unseen-section texts mixed in. Each pool is scored as
the service would log it, and `--windows` random windows of each size are checked:
the rate of drift verdicts is the detection rate (the false-alarm rate for the
undrifted pool), per signal and combined, and the label-free accuracy estimate is
compared with the true accuracy in every window.

`--sampling` also measures what sampling a large window costs in detection: windows
of 50,000 predictions (from a pool of 60,000 base texts, scored once and cached:
several minutes with MiniLM on 2 cores) holding a small share of drifted ones are
checked in full and sampled to REFIT_DRIFT_MAX_ROWS (20,000).
Results are appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from refit import datagen
from refit.core.backends.base import Backend
from refit.core.backends.torch_backend import TorchBackend
from refit.core.registry import Registry
from refit.monitoring.drift.check import compare
from refit.monitoring.drift.estimate import estimate_reliable
from refit.monitoring.drift.evaluation import (
    WindowOutcome,
    detection_rate,
    estimate_errors,
    evaluate_windows,
    signal_rates,
)
from refit.monitoring.drift.features import sample_rows
from refit.monitoring.drift.signals import verdict
from refit.service.settings import Settings
from refit.training.reference import ReferenceProfile, score_pool

HERE = Path(__file__).resolve().parent


MIXES = (0.02, 0.05, 0.1)
LARGE = 50_000
LARGE_POOLS = {"base": 60_000, "drifted": 5_000}


def pools(
    classifier: Backend, version: str, cache: Path, sizes: dict[str, int], seed: int
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


REAL_MIX = 0.3  # share of unseen-section texts in the real-text "mixed" windows


def real_pools(
    classifier: Backend,
    version: str,
    folder: Path,
    cache: Path,
    names: tuple[str, ...] = ("holdout", "unseen_topic", "shifted_mix", "long_texts"),
) -> dict[str, pd.DataFrame]:
    """Scored pools of the real-text benchmark's files (cached per model version)."""
    found = {}
    for name in names:
        path = cache / f"real-{version}-{name}.parquet"
        if not path.exists():
            frame = pd.read_csv(folder / f"{name}.csv")[["text", "label"]]
            started = time.perf_counter()
            score_pool(classifier, frame).to_parquet(path)
            print(f"scored {len(frame)} {name} texts in {time.perf_counter() - started:.0f} s")
        found[name] = pd.read_parquet(path)
    return found


def windows_of(
    pools: dict[str, pd.DataFrame], scenario: str, size: int, count: int, seed: int
) -> list[pd.DataFrame]:
    """`count` windows of `size` rows of a scenario; `mixed_30` draws 30% of each
    window from the unseen sections and the rest from the holdout."""
    rng = np.random.default_rng(seed)
    if scenario != "mixed_30":
        pool = pools[scenario]
        return [
            pool.iloc[rng.choice(len(pool), size=size, replace=False)].reset_index(drop=True)
            for _ in range(count)
        ]
    moved = int(size * REAL_MIX)
    base, new = pools["holdout"], pools["unseen_topic"]
    return [
        pd.concat(
            [
                base.iloc[rng.choice(len(base), size=size - moved, replace=False)],
                new.iloc[rng.choice(len(new), size=moved, replace=False)],
            ],
            ignore_index=True,
        )
        for _ in range(count)
    ]


def rates_table(
    settings: Settings,
    profile: ReferenceProfile,
    pools: dict[str, pd.DataFrame],
    scenarios: list[str],
    sizes: list[int],
    windows: int,
) -> str:
    """Per scenario and window size: drift verdicts, each signal's detections, and the
    accuracy estimate's error (estimate - truth) with how often it was marked unreliable."""
    lines = [
        "| scenario | window | drift verdicts | per signal (windows flagged) | true accuracy "
        "| estimate error mean / worst | within 0.03 | interval holds the truth "
        "| marked unreliable |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in scenarios:
        for size in sizes:
            if scenario != "mixed_30" and len(pools[scenario]) < size:
                continue
            outcomes = evaluate_windows(
                settings, profile, windows_of(pools, scenario, size, windows, seed=7)
            )
            lines.append(_row(scenario, size, outcomes, windows))
            print(lines[-1], flush=True)
    return "\n".join(lines)


def _row(scenario: str, size: int, outcomes: list[WindowOutcome], windows: int) -> str:
    flagged = ", ".join(
        f"{name} {round(rate * windows)}" for name, rate in signal_rates(outcomes).items() if rate
    )
    errors = estimate_errors(outcomes)
    truth = np.mean([o.true_accuracy for o in outcomes])
    unreliable = sum(
        not estimate_reliable([s.name for s in o.signals if s.drifted]) for o in outcomes
    )
    covered = sum(abs(o.estimated_accuracy - o.true_accuracy) <= o.estimated_margin
                  for o in outcomes)  # fmt: skip
    return (
        f"| {scenario} | {size} | {round(detection_rate(outcomes) * windows)}/{windows} | "
        f"{flagged or '-'} | {truth:.3f} | {errors.mean():+.3f} / {np.abs(errors).max():.3f} | "
        f"{(np.abs(errors) <= 0.03).sum()}/{windows} | {covered}/{windows} | "
        f"{unreliable}/{windows} |"
    )


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
                    rows = sample_rows(window, config.drift.drift_max_rows, config.training.seed)
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


def scenario_pools(
    args: argparse.Namespace, classifier: Backend, version: str
) -> tuple[dict[str, pd.DataFrame], list[str], str]:
    """(scored pools, scenarios to check, the data's name) for `--data` and `--scenarios`."""
    chosen = args.scenarios.split(",") if args.scenarios else None
    if args.data.startswith("real:"):
        scenarios = ["holdout", "unseen_topic", "mixed_30", "shifted_mix", "long_texts"]
        scenarios = [name for name in scenarios if chosen is None or name in chosen]
        needed = {"mixed_30": ("holdout", "unseen_topic")}
        files = {file for name in scenarios for file in needed.get(name, (name,))}
        folder = Path(args.data[5:])
        scored = real_pools(classifier, version, folder, args.cache, tuple(sorted(files)))
        return scored, scenarios, f"Debian real-text benchmark ({folder})"
    scored = pools(classifier, version, args.cache, {"base": 3000, "drifted": 1500}, 1000)
    scenarios = [name for name in datagen.SCENARIOS if chosen is None or name in chosen]
    return scored, scenarios, "built-in generator"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--sizes", default="200,500,2000", help="window sizes, comma-separated")
    parser.add_argument("--data", default="builtin", help="builtin, or real:DIR")
    parser.add_argument("--sampling", action="store_true")
    parser.add_argument("--sampling-windows", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/refit-drift-quality"))
    parser.add_argument("--scenarios", default="", help="only these scenarios, comma-separated")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    version = Registry.from_settings(settings.core).get()
    profile = ReferenceProfile.read(version.path, version=version.version)
    classifier = TorchBackend.from_folder(
        version.path,
        device="cpu",
        max_length=version.max_length(settings.training.max_length),
        capture_embeddings=True,
    )
    sizes = [int(size) for size in args.sizes.split(",")]
    scored, scenarios, source = scenario_pools(args, classifier, version.version)
    model = f"{version.tag} ({version.metadata.get('base_model')}, test accuracy " \
        f"{version.metadata.get('test_accuracy')})"  # fmt: skip
    header = f"{source}; {args.windows} random windows per scenario and size."
    sections = [header, rates_table(settings, profile, scored, scenarios, sizes, args.windows)]
    if args.sampling and not args.data.startswith("real:"):
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
