"""The MMD embedding test: it sees a window that fills the known clusters differently, which
the k-NN novelty test cannot, and stays quiet on windows drawn like the reference."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from refit.monitoring.drift.features import EMBEDDING_COLUMNS
from refit.monitoring.drift.mmd import gaussian_kernel, mmd_p_value, mmd_statistics
from refit.monitoring.drift.novelty import novelty_p_value
from refit.monitoring.drift.report import run_report
from refit.monitoring.drift.signals import SignalSpec, signal_specs
from refit.monitoring.settings import DriftSettings

# Three known classes, as a fine-tuned encoder makes them: tight clusters far apart.
CENTRES = np.random.default_rng(1).normal(0.0, 4.0, (3, 32))


def draw(rows: int, shares: list[float], spread: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cluster = rng.choice(3, size=rows, p=shares)
    return (CENTRES[cluster] + rng.normal(0.0, spread, (rows, 32))).astype(np.float32)


REFERENCE = draw(300, [1 / 3] * 3, seed=2)


def test_new_topics_inside_known_clusters_are_seen_by_mmd_not_by_novelty() -> None:
    # A new topic the model maps into the known classes: no row is farther from the
    # reference than usual (tighter, if anything), but the window fills the space
    # differently: two classes only, near their centres.
    window = draw(300, [0.6, 0.4, 0.0], spread=0.8, seed=10)
    assert novelty_p_value(REFERENCE, window) > 0.5  # the old signal stays quiet
    assert mmd_p_value(REFERENCE, window) < 0.01


def test_windows_drawn_like_the_reference_do_not_fire() -> None:
    p_values = [mmd_p_value(REFERENCE, draw(300, [1 / 3] * 3, seed=100 + s)) for s in range(20)]
    assert sum(p < 0.01 for p in p_values) <= 1


def test_statistic_is_the_squared_mmd_by_hand() -> None:
    # Two rows per side, kernel by hand: MMD^2 = mean K(x,x') + mean K(y,y') - 2 mean K(x,y).
    rows = np.array([[0.0], [1.0], [3.0], [4.0]])
    kernel = gaussian_kernel(rows)
    labels = np.array([[0.0], [0.0], [1.0], [1.0]])
    by_hand = kernel[:2, :2].mean() + kernel[2:, 2:].mean() - 2 * kernel[:2, 2:].mean()
    assert mmd_statistics(kernel, labels)[0] == pytest.approx(by_hand, rel=1e-5)


def test_large_windows_are_sampled_and_tiny_ones_refused() -> None:
    big = draw(5000, [1 / 3] * 3, seed=3)
    assert mmd_p_value(REFERENCE, big, max_rows=500) > 0.01
    with pytest.raises(ValueError, match="at least 20 rows"):
        mmd_p_value(REFERENCE, big[:5])


@pytest.mark.parametrize(
    ("method", "threshold", "words"),
    [(None, 0.001, "5-NN novelty"), ("mmd", 0.01, "MMD")],
)
def test_the_embedding_spec_says_what_it_compares_and_how(
    method: str | None, threshold: float, words: str
) -> None:
    drift = DriftSettings() if method is None else DriftSettings(drift_embedding_method=method)
    settings = SimpleNamespace(drift=drift)  # the only section the specs read
    spec = next(s for s in signal_specs(settings) if s.kind == "embedding")  # type: ignore[arg-type]
    assert (spec.threshold, spec.p_value) == (threshold, True)
    assert "pooled last layer" in spec.about
    assert words in spec.about


@pytest.mark.parametrize("method", ["knn", "mmd"])
def test_the_report_computes_the_chosen_embedding_test(method: str) -> None:
    spec = SignalSpec("embedding", "embedding", "embedding", method, 0.01, "about")
    frame = lambda rows: pd.DataFrame(rows, columns=list(EMBEDDING_COLUMNS))  # noqa: E731
    shifted = draw(200, [0.6, 0.4, 0.0], spread=0.8, seed=10)
    _, (same,) = run_report([spec], frame(REFERENCE), frame(draw(200, [1 / 3] * 3, seed=5)))
    _, (moved,) = run_report([spec], frame(REFERENCE), frame(shifted))
    assert same.drifted is False
    assert (moved.drifted, moved.about) == (method == "mmd", "about")
