"""The drift report's summary names the embedding signal's representation and test, and
shows its score against its threshold."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from refit.monitoring.drift.report_page import summary_html
from refit.monitoring.drift.result import DriftResult
from refit.monitoring.drift.signals import SignalSpec, evaluate

WHEN = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def result(about: str) -> DriftResult:
    spec = SignalSpec("embedding", "embedding", "embedding", "knn", 0.001, about)
    return DriftResult("drift", WHEN, "v1", "1h", WHEN, WHEN, 600, 600, 700, [evaluate(spec, 1e-6)])


def test_the_summary_says_how_the_embedding_signal_is_computed() -> None:
    text = re.sub(r"<[^>]+>", " ", summary_html(result("pooled <last> layer; 5-NN novelty")))
    assert "Embedding signal: pooled &lt;last&gt; layer; 5-NN novelty;" in text
    assert "score 6.00 against threshold 3.00 (drifted)" in text


def test_a_summary_from_before_descriptions_shows_no_embedding_line() -> None:
    assert "Embedding signal:" not in summary_html(result(""))


def test_descriptions_survive_the_json_summary() -> None:
    kept = DriftResult.from_dict(result("pooled layer").to_dict())
    assert kept.signals[0].about == "pooled layer"
    raw = result("x").to_dict()
    del raw["signals"][0]["about"]  # written before the field existed
    assert DriftResult.from_dict(raw).signals[0].about == ""
