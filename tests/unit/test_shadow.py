"""The shadow replay with tiny models: the challenger re-scores the champion's logged traffic.

The champion is the tiny BERT trained on the built-in data, which has no
`data_privacy` intent; its traffic is half base messages, half the
`unseen_intent` scenario (a third of those `data_privacy`), with feedback labels on
the unseen-intent half.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from refit import datagen
from refit.core.backends.torch_backend import TorchBackend
from refit.core.registry import ModelVersion, Registry
from refit.monitoring.prediction_log import PredictionBatch, PredictionLog
from refit.retraining.audit import AuditLog
from refit.retraining.challenger import Challenger
from refit.retraining.gate import GateRules, Scores, judge
from refit.retraining.job import gate, run_retrain
from refit.retraining.replay import HASHED, replay
from refit.retraining.shadow import compare
from refit.service.settings import Settings
from refit.training.calibration import fit_calibration
from refit.training.snapshot import read_snapshot
from refit.training.train import train

SCORES = Scores(0.8, 0.8, 0.1)


@dataclass
class Served:
    settings: Settings
    champion: ModelVersion
    log: PredictionLog
    feedback: pd.DataFrame  # text, label: the labelled traffic
    model: TorchBackend  # the champion


def log_scored(log: PredictionLog, version: ModelVersion, texts: list[str]) -> list[str]:
    """Score `texts` with `version` and log them as the service would; their ids."""
    classifier = TorchBackend.from_folder(version.path, device="cpu", max_length=48)
    out = classifier.predict(texts)
    ids = [uuid.uuid4().hex for _ in texts]
    seq = log.submit(
        PredictionBatch.of_output(ids, texts, out, classifier.labels, version.version, 5.0)
    )
    assert log.wait_durable(seq, 10)
    return ids


def make_settings(make: Callable[..., Settings], state: Path, **more: object) -> Settings:
    # About 8 s of training for a model right five times in six, and sure of most
    # answers. The gate's other rules are loosened: these tests are about the replay.
    return make(
        state,
        f"shadow-{uuid.uuid4().hex[:8]}",
        generated_rows=2000,
        epochs=10,
        learning_rate=0.005,
        max_length=48,
        retrain_min_rows=20,
        drift_reference_rows=200,
        gate_max_loss=0.05,
        gate_max_latency_ratio=5.0,
        **more,
    )


@pytest.fixture(scope="module")
def served(
    tiny_settings: Callable[..., Settings], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    settings = make_settings(tiny_settings, tmp_path_factory.mktemp("shadow") / "state")
    champion = train(settings).version
    log = PredictionLog(settings.monitoring.resolved_log_url(settings.core))
    log.start()
    base = datagen.generate(300, seed=11)
    drifted = datagen.generate(300, scenario="unseen_intent", seed=12)
    log_scored(log, champion, base["text"].tolist())
    ids = log_scored(log, champion, drifted["text"].tolist())
    labels = list(datagen.INTENTS)
    log.attach_feedback(list(zip(ids, drifted["label"], strict=True)), labels, 5)
    try:
        model = TorchBackend.from_folder(champion.path, device="cpu", max_length=48)
        yield Served(settings, champion, log, drifted[["text", "label"]], model)
    finally:
        log.close()


def challenger_of(served: Served, version: ModelVersion) -> Challenger:
    original = read_snapshot(served.champion.path)
    return Challenger(version, served.feedback, original.test)


def test_a_challenger_trained_on_shuffled_labels_is_refused_for_its_confident_changes(
    served: Served, tmp_path: Path
) -> None:
    data = datagen.generate(2000, seed=0)[["text", "label"]]
    data["label"] = np.random.default_rng(0).permutation(data["label"].to_numpy())
    data.to_csv(tmp_path / "shuffled.csv", index=False)
    shuffled = train(served.settings, data=tmp_path / "shuffled.csv").version
    assert Registry.from_settings(served.settings.core).champion_tag() == served.champion.tag
    decision, report = gate(
        served.settings, served.champion, challenger_of(served, shuffled), served.log
    )
    assert not decision.promote
    assert "confident changes" in decision.reasons[0]
    assert (report.replayed, report.rows) == (True, 600)
    assert (report.agreement or 1) < 0.5
    assert (report.confident_change_share or 0) > 0.5
    support = report.feedback
    assert support.disagreements >= 10
    assert support.champion_right > support.challenger_right
    assert any("not supported" in reason for reason in decision.reasons)
    assert len(report.examples) == 10
    assert all(len(e["text"]) <= 200 for e in report.examples)


def test_a_challenger_identical_to_the_champion_agrees_and_is_refused_for_no_gain(
    served: Served,
) -> None:
    decision, report = gate(
        served.settings, served.champion, challenger_of(served, served.champion), served.log
    )
    assert report.agreement == 1.0
    assert (report.confident_changes, report.changes, report.examples) == (0, [], [])
    assert report.mean_confidence is not None
    assert abs(report.mean_confidence.change or 0) < 1e-4
    assert report.estimated_accuracy is not None
    assert report.estimated_accuracy.change == pytest.approx(0, abs=1e-3)
    assert report.latency_ms_per_1000 is not None
    assert report.latency_texts == 256
    assert decision.reasons[0] == "failed: recent gain"
    assert "shadow replay: 0 of" in decision.reasons[4]


@pytest.mark.slow  # a retraining of the tiny model
def test_a_challenger_that_learned_the_new_intent_is_promoted_on_feedback_support(
    served: Served,
) -> None:
    # Any confident change needs feedback support here, so the support is what promotes.
    # Ten more epochs learn the new intent well but forget some of the original data,
    # which the original-loss rule would refuse: that rule is not what is tested here.
    settings = served.settings.with_overrides(gate_max_confident_changes=0.0, gate_max_loss=1.0)
    result = run_retrain(settings, reason="test", log=served.log)
    report = result.shadow
    assert report is not None
    assert report.replayed
    assert result.promoted, result.decision.reasons
    assert report.confident_changes > 0
    moved = {(c["champion"], c["challenger"]) for c in report.changes}
    assert any(to == datagen.UNSEEN_INTENT for _, to in moved)
    support = report.feedback
    assert support.challenger_right >= 10
    assert support.challenger_right > support.champion_right
    assert any(
        r.startswith("shadow replay:") and "supported:" in r for r in result.decision.reasons
    )
    record = AuditLog(settings.core).read()[-1]
    assert record["shadow"]["agreement"] == report.agreement
    assert record["shadow"]["feedback"]["challenger_right"] == support.challenger_right


def test_a_hashed_log_has_nothing_to_replay(served: Served, tmp_path: Path) -> None:
    hashed = PredictionLog(f"sqlite:///{tmp_path / 'hashed.db'}", text_mode="hashed")
    hashed.start()
    versions, models = (served.champion, served.champion), (served.model, served.model)
    rules = served.settings.retraining
    try:
        log_scored(hashed, served.champion, datagen.generate(60, seed=5)["text"].tolist())
        # A log's rows tell it keeps no text, whatever the settings say ...
        found = replay(rules, "raw", hashed, versions, models)
        # ... and settings that say so skip the reading.
        told = replay(rules, "hashed", served.log, versions, models)
    finally:
        hashed.close()
    for report in (found, told):
        assert not report.replayed
        assert report.reason == HASHED
        assert not report.figures().replayed
    assert HASHED.startswith("no texts to replay: the log keeps hashes only")


def test_too_few_logged_texts_are_not_replayed(served: Served) -> None:
    unserved = replace(served.champion, version="neverserved")
    models = (served.model, served.model)
    report = replay(served.settings.retraining, "raw", served.log, (unserved, unserved), models)
    assert not report.replayed
    assert report.reason == (
        "only 0 logged predictions of the champion (neverserved) with their text; a replay needs 50"
    )
    decision = judge(SCORES, SCORES, GateRules(0.0, 0.0, 2.0, 0.1, 0.9, 10), report.figures())
    assert decision.promote
    assert decision.reasons[-1] == f"shadow replay: not replayed: {report.reason}"


def test_the_report_on_hand_made_rows() -> None:
    frame = pd.DataFrame(
        {
            "text": ["a", "b", "c", "d", "x" * 300],
            "champion_label": ["billing", "billing", "shipping", "shipping", "billing"],
            "champion_score": [0.95, 0.5, 0.99, 0.92, 0.97],
            "challenger_label": ["billing", "shipping", "shipping", "billing", "refund"],
            "challenger_score": [0.9, 0.6, 0.9, 0.8, 0.7],
            "true_label": [None, "shipping", None, "billing", "billing"],
            "unseen": [True, True, True, True, False],
        }
    )
    report = compare(frame, confident_score=0.9)
    assert (report.rows, report.agreement) == (5, 0.4)
    assert report.agreement_by_label == {
        "billing": {"rows": 3, "agreement": 0.3333},
        "shipping": {"rows": 2, "agreement": 0.5},
    }
    assert report.changes == [
        {"champion": "billing", "challenger": "refund", "rows": 1},
        {"champion": "billing", "challenger": "shipping", "rows": 1},
        {"champion": "shipping", "challenger": "billing", "rows": 1},
    ]
    # Confident: a, c, d, x; changed among them: d and x.
    assert (report.confident_rows, report.confident_changes) == (4, 2)
    assert report.confident_change_share == 0.5
    # Labelled and unseen: b and d, both disagreements the challenger gets right.
    assert (report.feedback.rows, report.feedback.disagreements) == (2, 2)
    assert (report.feedback.champion_right, report.feedback.challenger_right) == (0, 2)
    assert [e["text"] for e in report.examples] == ["x" * 200, "d", "b"]
    assert report.mean_confidence is not None
    assert report.mean_confidence.change == -0.086
    assert report.to_dict()["feedback"]["challenger_right"] == 2


def test_confident_means_calibrated_confidence_when_the_champion_has_a_calibration() -> None:
    # An under-confident model: raw scores near 0.6 that were right 19 times in 20.
    frame = pd.DataFrame(
        {
            "text": ["a", "b", "c"],
            "champion_label": ["billing", "billing", "shipping"],
            "champion_score": [0.62, 0.61, 0.3],
            "challenger_label": ["refund", "billing", "shipping"],
            "challenger_score": [0.7, 0.7, 0.7],
            "true_label": [None, None, None],
            "unseen": [True, True, True],
        }
    )
    scores = np.r_[np.full(20, 0.6), np.full(20, 0.3)]
    correct = np.r_[np.ones(19), 0, np.zeros(15), np.ones(5)]
    calibration = fit_calibration(scores, correct, rows_per_bin=20)  # a bin per score
    raw = compare(frame, confident_score=0.9)
    assert (raw.confidence_basis, raw.confident_rows) == ("raw score", 0)
    calibrated = compare(frame, confident_score=0.9, calibrations=(calibration, None))
    assert calibrated.confidence_basis == "calibrated"
    assert (calibrated.confident_rows, calibrated.confident_changes) == (2, 1)
