"""A drift check end to end: a tiny model trained and registered, a SQLite prediction log
filled with scored generated windows, the check, its files, the CLI and the gauges."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from runner import run_refit

from refit import datagen
from refit.core.backends.torch_backend import TorchBackend
from refit.core.errors import NoReferenceProfile
from refit.core.registry import ModelVersion, Registry
from refit.monitoring.drift.check import run_drift_check
from refit.monitoring.drift.estimate_text import estimate_words
from refit.monitoring.drift.export import drift_exposition
from refit.monitoring.drift.history import LATEST, list_runs, reports_dir
from refit.monitoring.prediction_log import PredictionBatch, PredictionLog
from refit.retraining.watch_state import state_path
from refit.service.settings import Settings
from refit.training.reference import CALIBRATION_FILE, REFERENCE_FILE

NOW = datetime.now(UTC).replace(microsecond=0)
BASE_END = NOW - timedelta(hours=2)  # an hour of base traffic ends here
# The last hour holds long messages: the CLI's default window sees drift.


@dataclass
class World:
    settings: Settings
    version: ModelVersion
    env: dict[str, str]
    ids: list[str]


def log_window(
    log: PredictionLog,
    classifier: TorchBackend,
    version: str,
    frame: pd.DataFrame,
    end: datetime,
) -> list[str]:
    """Score `frame` and log it, spread over the 50 minutes before `end`."""
    texts = frame["text"].tolist()
    out = classifier.predict(texts)
    ids = [uuid.uuid4().hex for _ in texts]
    start = end.timestamp() - 3000
    for i in range(0, len(texts), 50):
        part = slice(i, i + 50)
        log.submit(
            PredictionBatch(
                ids=ids[part],
                texts=texts[part],
                labels=[classifier.labels[k] for k in out.label_ids[part]],
                scores=out.probs[part],
                label_names=classifier.labels,
                model_version=version,
                created=start + 3000 * i / len(texts),
                latency_ms=np.full(len(texts[part]), 5.0),
                n_tokens=out.n_tokens[part],
                truncated=out.truncated[part],
                unknown_tokens=out.unknown_tokens[part],  # type: ignore[index]
                embeddings=out.embeddings[part],  # type: ignore[index]
            )
        )
    return ids


@pytest.fixture(scope="module")
def world(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> World:
    from refit.training.train import train

    state = tmp_path_factory.mktemp("drift") / "state"
    env = {
        "REFIT_BASE_MODEL": str(tiny_base_model),
        # About 4 s of training for a model that is right two times in three.
        "REFIT_GENERATED_ROWS": "2000",
        "REFIT_EPOCHS": "4",
        "REFIT_LEARNING_RATE": "0.003",
        "REFIT_MAX_LENGTH": "64",
        "REFIT_DEVICE": "cpu",
        "REFIT_STATE_DIR": str(state),
        "REFIT_MODEL_NAME": f"drift-{uuid.uuid4().hex[:8]}",
        # The checks read the log and the reference profile, never an ONNX graph, whose
        # export and verification would take most of this fixture's time.
        "REFIT_EXPORT_BACKENDS": "false",
    }
    settings = Settings(**{k.removeprefix("REFIT_").lower(): v for k, v in env.items()})
    version = train(settings).version
    classifier = TorchBackend.from_folder(
        version.path, device="cpu", max_length=64, capture_embeddings=True
    )
    log = PredictionLog(settings.monitoring.resolved_log_url(settings.core))
    log.start()
    base = datagen.generate(300, scenario="base", seed=11)
    ids = log_window(log, classifier, version.version, base, BASE_END)
    long = datagen.generate(300, scenario="long_messages", seed=12)
    log_window(log, classifier, version.version, long, NOW - timedelta(minutes=1))
    small = datagen.generate(50, scenario="base", seed=13)
    log_window(log, classifier, version.version, small, NOW - timedelta(hours=5))
    log.close()
    feedback = PredictionLog(settings.monitoring.resolved_log_url(settings.core))
    feedback.attach_feedback(list(zip(ids[:100], base["label"][:100], strict=True)), None)
    feedback.close()
    return World(settings, version, env, ids)


def test_training_writes_the_reference_profile(world: World) -> None:
    assert (world.version.path / REFERENCE_FILE).is_file()
    sizes = world.version.read_json("training.json")["split_sizes"]
    held_out = sizes["validation"] + sizes["test"]
    calibration = json.loads((world.version.path / CALIBRATION_FILE).read_text())
    assert calibration["n"] == held_out
    reference = pd.read_parquet(world.version.path / REFERENCE_FILE)
    assert reference["inputs"].sum() == 2000  # every row: fewer than the 3000 cap
    assert reference["outputs"].sum() == held_out
    assert set(reference.loc[reference["outputs"], "split"]) == {"validation", "test"}
    assert reference["embedding"].map(len).eq(64).all()


def test_a_base_window_gets_a_verdict_with_every_signal(world: World) -> None:
    result = run_drift_check(world.settings, window=timedelta(hours=1), end=BASE_END)
    assert result.status in ("ok", "drift")
    assert result.window_size == 300
    assert result.compared_rows == 300
    assert [s.name for s in result.signals] == [
        "n_chars", "n_tokens", "unknown_rate", "digit_share", "upper_share", "punct_share",
        "predicted_label", "confidence", "text", "embedding",
    ]  # fmt: skip
    assert all(s.value is not None and s.drifted is not None for s in result.signals)
    assert result.labelled_rows == 100
    assert result.actual_accuracy is not None
    assert result.actual_macro_f1 is not None
    assert result.estimated_accuracy is not None
    assert 0 < result.estimated_accuracy <= 1
    # Calibrated on the held-out rows and the 100 feedback labels, which are in the window:
    # each of them is calibrated by the other folds (test_calibration.py).
    sizes = world.version.read_json("training.json")["split_sizes"]
    held_out = sizes["validation"] + sizes["test"]
    assert (result.calibration_rows, result.calibration_feedback_rows) == (held_out + 100, 100)
    assert result.html_path is not None
    assert result.html_path.stat().st_size > 100_000
    assert result.json_path is not None
    assert result.json_path.name == f"{result.html_path.stem}.json"
    assert world.version.version in result.json_path.name
    summary = json.loads(result.json_path.read_text())
    assert summary["status"] == result.status
    assert summary == json.loads(
        (reports_dir(world.settings.core.resolved_state_dir()) / LATEST).read_text()
    )


def test_long_messages_are_drift_in_their_length(world: World) -> None:
    result = run_drift_check(world.settings, window=timedelta(hours=1), end=NOW)
    assert result.status == "drift"
    assert {"n_chars", "n_tokens"} <= set(result.drifted_signals)
    assert result.labelled_rows == 0
    assert result.actual_accuracy is None


def test_a_small_window_is_not_enough_data(world: World) -> None:
    result = run_drift_check(
        world.settings, window=timedelta(hours=1), end=NOW - timedelta(hours=5)
    )
    assert result.status == "not_enough_data"
    assert result.window_size == 50
    assert "not enough data" in result.message
    assert result.signals == []
    assert result.html_path is None
    assert result.json_path is not None
    assert result.json_path.is_file()


def test_sampling_caps_the_rows_compared(world: World) -> None:
    settings = world.settings.with_overrides(drift_max_rows=500)
    result = run_drift_check(settings, window=timedelta(hours=6), end=NOW)
    assert result.window_size == 650
    assert result.compared_rows == 500
    assert "sample of 500 of 650" in result.message


def test_hashed_texts_skip_the_text_signal(world: World, tmp_path: Path) -> None:
    settings = world.settings.with_overrides(
        log_text="hashed", prediction_log_url=f"sqlite:///{tmp_path / 'h.db'}"
    )
    log = PredictionLog(settings.monitoring.resolved_log_url(settings.core), text_mode="hashed")
    classifier = TorchBackend.from_folder(
        world.version.path, device="cpu", max_length=64, capture_embeddings=True
    )
    frame = datagen.generate(250, scenario="long_messages", seed=14)
    log_window(log, classifier, world.version.version, frame, NOW)
    log.close()
    result = run_drift_check(settings, window=timedelta(hours=1), end=NOW)
    text = next(s for s in result.signals if s.name == "text")
    assert text.drifted is None
    assert "not logged" in text.note
    # Descriptors were counted before hashing: the drift is still seen.
    assert result.status == "drift"
    assert "n_chars" in result.drifted_signals


def test_a_version_without_profile_asks_for_retraining(world: World) -> None:
    def write(folder: Path) -> None:
        for item in world.version.path.iterdir():
            if item.name not in (REFERENCE_FILE, CALIBRATION_FILE) and item.is_file():
                (folder / item.name).write_bytes(item.read_bytes())

    registry = Registry.from_settings(world.settings.core)
    old = registry.register(write, metadata=dict(world.version.metadata))
    with pytest.raises(NoReferenceProfile, match="retrain"):
        run_drift_check(world.settings, window=timedelta(hours=1), model_version=old.version)


def test_gauges_follow_the_latest_summary(world: World) -> None:
    result = run_drift_check(world.settings, window=timedelta(hours=1), end=NOW)
    samples = {
        (sample.name, sample.labels.get("signal")): (sample.value, sample.labels)
        for family in text_string_to_metric_families(
            drift_exposition(
                world.settings.core.resolved_state_dir(), state_path(world.settings.core)
            )
        )
        for sample in family.samples
    }
    assert samples[("refit_drift_detected", None)][0] == 1.0
    assert samples[("refit_drift_window_size", None)][0] == 300
    score, labels = samples[("refit_drift_score", "n_chars")]
    assert labels["model_version"] == world.version.version
    n_chars = next(s for s in result.signals if s.name == "n_chars")
    assert score == pytest.approx(n_chars.score)
    assert samples[("refit_drift_threshold", "n_chars")][0] == pytest.approx(3.0)  # p 0.001
    assert samples[("refit_drift_estimated_accuracy", None)][0] == pytest.approx(
        result.estimated_accuracy
    )
    calibration = samples[("refit_drift_estimate_calibration_rows", None)][0]
    assert calibration == result.calibration_rows
    assert samples[("refit_drift_estimate_calibration_feedback_rows", None)][0] == 100
    assert ("refit_drift_actual_accuracy", None) not in samples  # no feedback in the window
    checked = samples[("refit_drift_last_check_timestamp_seconds", None)][0]
    assert checked == result.checked_at.timestamp()


def test_cli_drift_and_reports(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {**world.env, "COLUMNS": "250"}.items():
        monkeypatch.setenv(key, value)
    code, out = run_refit(capsys, "drift", "--window", "1h", "--fail-on-drift")
    assert code == 3, out
    assert "DRIFT" in out
    assert "n_chars" in out
    assert "labelled predictions, 100 of them feedback" in out
    assert "report:" in out
    code, out = run_refit(capsys, "drift", "--window", "1h")
    assert code == 0, out
    code, out = run_refit(capsys, "drift", "--window", "1y")
    assert code == 2
    time.sleep(1.1)  # report names have one-second resolution
    code, out = run_refit(capsys, "reports", "--limit", "2")
    assert code == 0, out
    runs = list_runs(reports_dir(world.settings.core.resolved_state_dir()), 2)
    assert len(runs) == 2
    for run in runs:
        assert run.model_version in out
        assert run.html_path is not None
        assert run.html_path.name in out.replace("\n", "")


def test_the_html_report_opens_with_refits_verdict_and_agrees_with_the_cli(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_refit(capsys, "drift", "--window", "1h", "--json", env=world.env)
    assert code == 0
    summary = json.loads(out)
    page = Path(summary["html_path"]).read_text()
    head = page[: page.index('id="refit-summary"') + 20_000]
    assert "<title>refit drift check" in page
    assert "refit drift check: <span" in head
    assert summary["model_version"] in head
    assert f"{summary['window_size']} predictions" in head
    for signal in summary["signals"]:  # the scores `refit drift` prints, not Evidently's
        if signal["score"] is not None:
            assert f"<td>{signal['name']}</td>" in head
            assert f"{signal['score']:.2f}" in head
    if summary["estimated_accuracy"] is not None:  # worded as the CLI and front page word it
        text, _ = estimate_words(
            summary["estimated_accuracy"],
            summary["estimated_margin"],
            summary["estimate_reliable"],
            summary["drifted_signals"],
            summary["calibration_rows"],
        )
        assert text in head
        assert "labelled predictions" in text
        feedback = summary["calibration_feedback_rows"]
        assert f"{feedback} of them feedback" in head
    # Evidently's share-of-columns headline is not refit's rule and must not appear.
    assert "Dataset Drift is detected" not in page
    assert "Dataset drift detection threshold" not in page


def test_the_estimate_is_worded_the_same_everywhere() -> None:
    assert estimate_words(None, None, True) == ("n/a", "")
    assert estimate_words(0.8104, 0.0213, True) == ("0.810 ± 0.021", "")
    assert estimate_words(0.81, None, False, ["embedding"]) == (
        "0.810",
        "unreliable: the inputs drifted in embedding; only feedback can tell",
    )
