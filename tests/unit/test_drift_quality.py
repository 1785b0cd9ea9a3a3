"""Quality targets of drift checks on the built-in scenarios (slow: trains a model).

For each scenario, 20 random windows of 500 predictions are drawn from a pool of
scored generated texts and checked against the reference profile the training run
wrote. Targets: every drifted scenario detected in at least 19 of 20 windows, at
most 1 false alarm in 20 windows of the training distribution, and the label-free
accuracy estimate within 0.05 of the true accuracy there.

The model is the tiny 2-layer BERT of the fixtures trained for 10 epochs on the
built-in 5,000 rows (about 20 s; test accuracy about 0.84): good enough for
confidence and embeddings to mean something. `bench/drift_quality.py` measures the
same with the real MiniLM model.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pandas as pd
import pytest

from refit import datagen
from refit.core.backends.torch_backend import TorchBackend
from refit.monitoring.drift.evaluation import (
    WindowOutcome,
    check_windows,
    detection_rate,
    estimate_errors,
    signal_rates,
)
from refit.service.settings import Settings
from refit.training.reference import ReferenceProfile, score_pool

pytestmark = pytest.mark.slow

WINDOWS, SIZE = 20, 500
DRIFTED = tuple(name for name in datagen.SCENARIOS if name != "base")


@pytest.fixture(scope="module")
def trained(
    tiny_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, ReferenceProfile, TorchBackend]:
    from refit.training.train import train

    settings = tiny_settings(
        tmp_path_factory.mktemp("quality") / "state",
        f"quality-{uuid.uuid4().hex[:8]}",
        generated_rows=5000,
        epochs=10,
        learning_rate=0.005,
    )
    version = train(settings).version
    profile = ReferenceProfile.read(version.path)
    classifier = TorchBackend.from_folder(
        version.path, device="cpu", max_length=64, capture_embeddings=True
    )
    return settings, profile, classifier


def pool(classifier: TorchBackend, scenario: str, rows: int) -> pd.DataFrame:
    seed = 1000 + datagen.SCENARIOS.index(scenario)  # not the training seed
    return score_pool(classifier, datagen.generate(rows, scenario=scenario, seed=seed))


def outcomes_of(
    trained: tuple[Settings, ReferenceProfile, TorchBackend], scenario: str
) -> list[WindowOutcome]:
    settings, profile, classifier = trained
    rows = pool(classifier, scenario, 3000 if scenario == "base" else 1500)
    return check_windows(settings, profile, rows, windows=WINDOWS, size=SIZE, seed=7)


@pytest.fixture(scope="module")
def base_outcomes(
    trained: tuple[Settings, ReferenceProfile, TorchBackend],
) -> list[WindowOutcome]:
    return outcomes_of(trained, "base")


def test_the_training_distribution_rarely_alarms(base_outcomes: list[WindowOutcome]) -> None:
    alarms = sum(outcome.drifted for outcome in base_outcomes)
    print(f"base: {alarms}/{WINDOWS} false alarms; by signal {signal_rates(base_outcomes)}")
    assert alarms <= 1, (
        f"{alarms} false alarms in {WINDOWS}; by signal {signal_rates(base_outcomes)}"
    )


def test_the_accuracy_estimate_is_close_without_drift(base_outcomes: list[WindowOutcome]) -> None:
    errors = estimate_errors(base_outcomes)
    print(f"estimate error: mean {errors.mean():+.3f}, largest {abs(errors).max():.3f}")
    # The calibration is fitted once, on a few hundred held-out rows, and its own error
    # (about +/-0.03 at 95% at that size: bench/calibration_bench.py) is shared by every
    # window, so the windows' errors move together: the bound is on their mean, and each
    # window may stray by its own sampling spread on top.
    shown = f"estimate minus true accuracy per window: {errors.round(3)}"
    assert abs(errors.mean()) <= 0.03, shown
    assert abs(errors).max() <= 0.06, shown


@pytest.mark.parametrize("scenario", DRIFTED)
def test_each_drift_is_detected(
    trained: tuple[Settings, ReferenceProfile, TorchBackend], scenario: str
) -> None:
    outcomes = outcomes_of(trained, scenario)
    detected = round(detection_rate(outcomes) * WINDOWS)
    print(f"{scenario}: {detected}/{WINDOWS} detected; by signal {signal_rates(outcomes)}")
    assert detected >= 19, f"{scenario}: {detected}/{WINDOWS}; by signal {signal_rates(outcomes)}"
