"""Switching the served model in a running handler: swap, refuse, watch."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from tiny_versions import fallback_gauge, served_registry, write_tiny_version

from refit.core.backends.torch_backend import TorchBackend
from refit.core.errors import SchedulerClosed
from refit.core.registry import ModelVersion, Registry
from refit.monitoring.prediction_log import PredictionLog
from refit.service.model.hot_swap import HotSwapper
from refit.service.model.predictor import ServedModel
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.settings import Settings

LABELS = ["billing", "shipping"]


@pytest.fixture
def setup(tmp_path: Path, tiny_base_model: Path) -> tuple[Settings, Registry, list[ModelVersion]]:
    settings, registry, versions = served_registry(tmp_path, tiny_base_model, LABELS, "swap")
    registry.promote(versions[0].version, reason="first", actor="test")
    return settings, registry, versions


def _handler(settings: Settings, version: ModelVersion) -> ClassifyHandler:
    return ClassifyHandler(ServedModel.load(version, settings), settings, log=None)


def _refusals() -> float:
    return REGISTRY.get_sample_value("refit_model_swaps_total", {"outcome": "refused"}) or 0.0


def test_swap_serves_the_new_champion_from_the_next_batch(setup) -> None:
    settings, registry, (v0, v1, _) = setup
    handler = _handler(settings, v0)
    swapper = HotSwapper(handler, settings)
    assert swapper.swap_to_champion().outcome == "unchanged"
    registry.promote(v1.version, reason="better", actor="test")
    outcome = swapper.swap_to_champion()
    assert (outcome.outcome, outcome.serving) == ("swapped", v1.version)
    assert {r["model_version"] for r in handler.classify_now(["refund please"])} == {v1.version}


def test_corrupt_version_is_refused_and_the_old_one_keeps_serving(setup) -> None:
    settings, registry, (v0, _, v2) = setup
    handler = _handler(settings, v0)
    swapper = HotSwapper(handler, settings)
    registry.promote(v2.version, reason="test", actor="test")
    (v2.path / "model.safetensors").unlink()  # corrupted after promotion
    before = _refusals()
    outcome = swapper.swap_to_champion()
    assert outcome.outcome == "refused"
    assert "model.safetensors" in outcome.reason
    assert handler.served.version.version == v0.version
    assert handler.classify_now(["still answering?"])[0]["model_version"] == v0.version
    assert _refusals() - before == 1
    # The watcher does not hammer a refused version; an explicit request tries again.
    assert swapper.swap_to_champion().reason == "refused before"
    assert swapper.swap_to_champion(retry_refused=True).outcome == "refused"


def test_incompatible_label_file_is_refused(setup, tiny_base_model: Path) -> None:
    settings, registry, (v0, _, _) = setup
    handler = _handler(settings, v0)
    swapper = HotSwapper(handler, settings)
    odd = registry.register(write_tiny_version(tiny_base_model, LABELS), metadata={})
    (odd.path / "labels.json").write_text('["shipping", "billing"]')
    # promote() itself refuses such a version, so point at it by hand, as a store
    # edited behind refit's back would.
    registry._pointer.write_text(f'{{"tag": "{odd.tag}"}}')
    assert swapper.swap_to_champion().outcome == "refused"
    assert handler.served.version.version == v0.version


def test_watcher_follows_promotions_while_requests_keep_flowing(setup) -> None:
    settings, registry, (v0, v1, _) = setup
    handler = _handler(settings, v0)
    swapper = HotSwapper(handler, settings)
    swapper.start()
    seen: list[set[str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                seen.append({r["model_version"] for r in handler.classify_now(["a", "b", "c"])})
            except BaseException as exc:  # any failure at all fails the test
                errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        registry.promote(v1.version, reason="better", actor="test")
        deadline = time.monotonic() + 20
        while handler.served.version.version != v1.version and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
        swapper.stop()
    assert errors == []
    assert handler.served.version.version == v1.version
    assert all(len(versions) == 1 for versions in seen), "a batch mixed two versions"
    assert {v0.version, v1.version} == set().union(*seen)


def test_watcher_refuses_unreadable_weights_once_then_follows_a_good_promotion(
    setup, caplog: pytest.LogCaptureFixture
) -> None:
    settings, registry, (v0, v1, v2) = setup
    handler = _handler(settings, v0)
    swapper = HotSwapper(handler, settings)
    registry.promote(v2.version, reason="test", actor="test")
    weights = v2.path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated after promotion
    before = _refusals()
    swapper.start()
    try:
        with caplog.at_level(logging.INFO, logger="refit.service.model.hot_swap"):
            time.sleep(20 * settings.serving.reload_interval_s)  # 20 polls
        assert _refusals() - before == 1
        assert handler.served.version.version == v0.version
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert errors[0].exc_info is None
        assert "Traceback" not in caplog.text
        message = errors[0].getMessage()
        assert f"model version {v2.tag} cannot be served" in message
        assert "weights in model.safetensors cannot be read: SafetensorError" in message
        assert str(v2.path) not in message
        assert swapper.readiness()["fallback"] is True
        assert fallback_gauge(v2, v0) == 1
        # An operator's explicit reload tries again, and is refused again.
        assert swapper.swap_to_champion(retry_refused=True).outcome == "refused"
        assert _refusals() - before == 2
        registry.promote(v1.version, reason="fixed", actor="test")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            handler.served.version.version != v1.version or fallback_gauge(v2, v0) != 0
        ):
            time.sleep(0.05)
    finally:
        swapper.stop()
    assert handler.served.version.version == v1.version
    assert swapper.readiness() == {
        "serving": v1.tag,
        "champion": v1.tag,
        "fallback": False,
        "reason": "",
        "backend": "torch-traced",  # no ONNX export, and none made at load (served_registry)
        "backend_reason": swapper.readiness()["backend_reason"],
        "device": "cpu",
    }
    assert "no backends.json" in swapper.readiness()["backend_reason"]
    assert fallback_gauge(v2, v0) == 0


@pytest.mark.parametrize(
    "error", [KeyError("added_tokens"), MemoryError(), TypeError("odd config")], ids=type
)
def test_any_load_failure_is_a_refusal_naming_the_version(
    setup, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    settings, registry, (v0, v1, _) = setup
    swapper = HotSwapper(_handler(settings, v0), settings)
    registry.promote(v1.version, reason="test", actor="test")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(TorchBackend, "from_folder", fail)
    before = _refusals()
    outcome = swapper.swap_to_champion()
    assert outcome.outcome == "refused"
    assert outcome.reason.startswith(f"model version {v1.tag} cannot be served: ")
    assert type(error).__name__ in outcome.reason
    assert _refusals() - before == 1


def test_a_prediction_the_closed_log_cannot_keep_is_refused_not_answered(setup, tmp_path) -> None:
    # A worker stopping (its server killed) closes its log; a request answered after
    # that would get a 200 for a prediction lost with the worker a moment later.
    settings, _, (v0, _, _) = setup
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.sqlite3'}")
    log.start()
    handler = ClassifyHandler(ServedModel.load(v0, settings), settings, log=log)
    assert len(handler.classify_now(["where is my parcel"])) == 1
    log.close()
    with pytest.raises(SchedulerClosed):
        handler.classify_now(["where is my parcel"])
