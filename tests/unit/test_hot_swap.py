"""Switching the served model in a running handler: swap, refuse, watch."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from tiny_versions import write_tiny_version

from core.registry import ModelVersion, Registry
from service.classify import ClassifyHandler
from service.hot_swap import HotSwapper
from service.predictor import ServedModel
from service.settings import Settings

LABELS = ["billing", "shipping"]


@pytest.fixture
def setup(tmp_path: Path, tiny_base_model: Path) -> tuple[Settings, Registry, list[ModelVersion]]:
    settings = Settings(
        model_name=f"swap-{uuid.uuid4().hex[:8]}",
        state_dir=tmp_path / "state",
        device="cpu",
        monitoring=False,
        reload_interval_s=0.1,
    )
    registry = Registry.from_settings(settings.core)
    versions = [
        registry.register(write_tiny_version(tiny_base_model, LABELS, seed), metadata={})
        for seed in range(3)
    ]
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
