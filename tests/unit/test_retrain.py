"""The retraining job with the tiny model: data gathering, snapshot, gate, audit, lock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from runner import run_refit

from refit import datagen
from refit.core.errors import Busy, TrainingError
from refit.core.registry import Registry
from refit.monitoring.prediction_log import PredictionBatch, PredictionLog
from refit.retraining.audit import AuditLog
from refit.retraining.challenger import combined_splits
from refit.retraining.job import retrain, run_retrain
from refit.retraining.lock import exclusive
from refit.retraining.recent_data import fresh_rows, gather_recent
from refit.retraining.schedule import Watcher, watch_trigger
from refit.retraining.watch_state import WatchState, state_path
from refit.service.settings import Settings
from refit.training.snapshot import read_snapshot
from refit.training.split import DatasetSplits
from refit.training.train import train


@pytest.fixture
def trained(tiny_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    settings = tiny_settings(
        tmp_path / "state",
        f"retrain-{uuid.uuid4().hex[:8]}",
        max_length=48,
        retrain_min_rows=20,
        drift_reference_rows=200,
    )
    train(settings)
    return settings


def _recent(rows: int, seed: int = 3) -> pd.DataFrame:
    frame = datagen.generate(rows, scenario="unseen_intent", seed=seed)
    return frame[["text", "label"]]


def _log_with_feedback(settings: Settings, frame: pd.DataFrame) -> PredictionLog:
    log = PredictionLog(settings.monitoring.resolved_log_url(settings.core))
    log.start()
    ids = [uuid.uuid4().hex for _ in range(len(frame))]
    n, labels = len(frame), ["billing", "shipping"]
    seq = log.submit(
        PredictionBatch(
            ids=ids,
            texts=frame["text"].tolist(),
            labels=["billing"] * n,
            scores=np.tile([0.9, 0.1], (n, 1)),
            label_names=labels,
            model_version="v",
            created=time.time(),
            latency_ms=np.full(n, 5.0),
            n_tokens=np.full(n, 10),
            truncated=np.zeros(n, dtype=bool),
        )
    )
    assert log.wait_durable(seq, 10)
    outcomes = log.attach_feedback(list(zip(ids, frame["label"], strict=True)), labels)
    assert "unknown_id" not in outcomes
    return log


def test_a_retrain_registers_a_challenger_with_the_original_test_split(trained: Settings) -> None:
    registry = Registry.from_settings(trained.core)
    champion = registry.get()
    result = retrain(trained, _recent(160))
    assert result.champion.tag == champion.tag
    assert result.challenger.tag != champion.tag
    before, after = read_snapshot(champion.path), read_snapshot(result.challenger.path)
    pd.testing.assert_frame_equal(before.test, after.test)  # the same yardstick
    assert len(after.train) > len(before.train)
    assert "data_privacy" in set(after.train["label"])  # the new intent was learned from
    assert result.decision.reasons[0] in ("all rules pass",) or result.decision.reasons[
        0
    ].startswith("failed: ")
    assert registry.champion_tag() == (result.challenger.tag if result.promoted else champion.tag)
    assert result.sizes["recent_holdout"] > 0


def test_the_challenger_replays_the_champions_rows_and_learns_the_recent_ones(
    tiny_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = tiny_settings(tmp_path, "mix", validation_fraction=0.2, retrain_holdout_fraction=0.3)
    original = DatasetSplits(
        train=pd.DataFrame({"text": ["a1", "a2", "a3"], "label": "a"}),
        validation=pd.DataFrame({"text": ["a4"], "label": "a"}),
        test=pd.DataFrame({"text": ["a5"], "label": "a"}),
    )
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
    words += "november oscar papa quebec romeo sierra tango"
    recent = pd.DataFrame({"text": [f"a note on {w}" for w in words.split()], "label": "b"})
    splits, holdout = combined_splits(settings, original, recent)
    # Every row of the champion is replayed; of 20 recent rows 0.3 are held out for the
    # gate, 0.2 join validation and the rest training.
    assert splits.train["text"].tolist()[:3] == ["a1", "a2", "a3"]
    assert (len(splits.train), len(splits.validation), len(holdout)) == (3 + 10, 1 + 4, 6)
    pd.testing.assert_frame_equal(splits.test, original.test)
    learned = set(splits.train["text"]) | set(splits.validation["text"])
    assert not learned & set(holdout["text"])


def test_the_joint_yardstick_shows_in_the_gate_report_and_history(
    trained: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = trained.with_overrides(retrain_joint_yardstick=True)
    log = _log_with_feedback(settings, _recent(80, seed=4))
    try:
        result = run_retrain(settings, reason="test", log=log)
    finally:
        log.close()
    assert result.decision.joint is not None
    assert result.decision.reasons[-1].startswith("yardstick: the joint model")
    record = AuditLog(settings.core).read()[-1]
    assert record["decision"]["joint"] is not None
    code, out = _cli(capsys, settings, "retrain", "history")
    assert code == 0, out
    assert "yardstick: the joint model" in out.replace("\n", " ")


def test_too_little_new_data_is_refused_before_training(trained: Settings) -> None:
    with pytest.raises(TrainingError, match="REFIT_RETRAIN_MIN_ROWS"):
        retrain(trained, _recent(10))


def test_texts_already_in_the_champions_data_are_not_counted_again(trained: Settings) -> None:
    snapshot = read_snapshot(Registry.from_settings(trained.core).get().path)
    known = snapshot.train.head(5)[["text", "label"]]
    new = _recent(5)
    fresh = fresh_rows(pd.concat([known, new], ignore_index=True), snapshot)
    assert fresh["text"].tolist() == new["text"].tolist()


def test_run_retrain_uses_feedback_and_incoming_files_and_records_it(trained: Settings) -> None:
    log = _log_with_feedback(trained, _recent(80, seed=4))
    incoming = trained.core.resolved_state_dir() / "incoming"
    incoming.mkdir(parents=True)
    _recent(60, seed=5).to_csv(incoming / "labelled.csv", index=False)
    try:
        recent = gather_recent(trained.core, trained.training, log)
        assert recent.feedback_rows == 80
        assert len(recent.frame) == 140
        result = run_retrain(trained, reason="test", log=log)
    finally:
        log.close()
    assert not (incoming / "labelled.csv").exists()
    assert list((incoming / "used").glob("*/labelled.csv"))
    record = AuditLog(trained.core).read()[-1]
    assert record["event"] == "retrain"
    assert record["reason"] == "test"
    assert record["challenger"] == result.challenger.tag
    assert record["decision"]["promote"] == result.promoted


def test_one_retrain_or_check_at_a_time_across_processes(trained: Settings) -> None:
    with exclusive(trained.core, "test"), pytest.raises(Busy):
        run_retrain(trained, reason="second")


def test_a_failed_check_is_recorded_and_the_schedule_goes_on(
    trained: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("refit.retraining.schedule.run_drift_check", broken)
    watcher = Watcher(trained)
    decision = watcher.tick()
    assert decision.action == "none"
    assert "disk on fire" in decision.reasons[0]
    state = WatchState.load(state_path(trained.core))
    assert (state.failures, state.last_status) == (1, "failed")
    assert AuditLog(trained.core).read()[-1]["event"] == "check_failed"


def _cli(capsys: pytest.CaptureFixture[str], settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        "REFIT_STATE_DIR": str(settings.core.state_dir),
        "REFIT_MODEL_NAME": settings.core.model_name,
        "COLUMNS": "200",
    }
    return run_refit(capsys, *args, env=env)


def test_cli_history_and_watch_status(
    trained: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    AuditLog(trained.core).append("decision", action="none", reasons=["drift in 0 checks"])
    code, out = _cli(capsys, trained, "retrain", "history")
    assert code == 0
    assert "drift in 0 checks" in out
    monkeypatch.setattr(
        "refit.retraining.schedule.run_drift_check",
        lambda *a, **k: (_ for _ in ()).throw(OSError("x")),
    )
    code, out = _cli(capsys, trained, "watch", "--once")
    assert code == 0
    assert "decision: none" in out
    code, out = _cli(capsys, trained, "watch", "--status")
    assert code == 0
    assert '"failures": 1' in out


def test_watch_schedules_from_an_interval_or_a_cron_expression() -> None:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    settings = Settings(watch_interval="20m", watch_cron=None)
    interval = watch_trigger(settings, interval="10s", cron=None)
    assert isinstance(interval, IntervalTrigger)
    assert interval.interval.total_seconds() == 10
    assert watch_trigger(settings, interval=None, cron=None).interval.total_seconds() == 1200
    assert isinstance(watch_trigger(settings, interval=None, cron="*/5 * * * *"), CronTrigger)
    with_cron = Settings(watch_cron="0 * * * *")
    assert isinstance(watch_trigger(with_cron, interval=None, cron=None), CronTrigger)
    # an interval on the command line beats the cron expression in the environment
    assert isinstance(watch_trigger(with_cron, interval="5m", cron=None), IntervalTrigger)
    with pytest.raises(ValueError, match="whole number"):
        watch_trigger(settings, interval="10", cron=None)
    with pytest.raises(ValueError, match="Wrong number of fields"):
        watch_trigger(settings, interval=None, cron="every minute")


def test_watch_refuses_a_malformed_interval_with_a_usage_error(
    trained: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _cli(capsys, trained, "watch", "--interval", "10 seconds")
    assert code == 2
    assert "whole number followed by s, m, h, d or w" in out
    assert "Traceback" not in out
