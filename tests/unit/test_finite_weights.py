"""A version whose weights hold NaN or inf is refused at registration, promotion and
load, and no answer ever carries a score that is not a finite number (issue 25, case 4)."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from runner import run_refit
from tiny_versions import (
    force_version,
    register_tiny_versions,
    running_handler,
    write_poisoned_version,
)

from refit.core.errors import ModelLoadError, NonFiniteScores
from refit.core.registry import Registry
from refit.service.model.predictor import ServedModel
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.settings import Settings

LABELS = ["billing", "shipping"]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        model_name=f"finite-{tmp_path.name[-8:]}",
        state_dir=tmp_path / "state",
        device="cpu",
        monitoring=True,
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_registration_refuses_a_version_with_a_non_finite_row(
    tmp_path: Path, tiny_base_model: Path, value: float
) -> None:
    registry = Registry.from_settings(_settings(tmp_path).core)
    write = write_poisoned_version(tiny_base_model, LABELS, "zebra", value)
    with pytest.raises(ModelLoadError, match=r"word_embeddings\.weight .*not finite"):
        registry.register(write, metadata={})
    assert registry.versions() == []  # discarded, not left in the store


def test_a_version_forced_into_the_store_is_refused_at_promotion_and_load(
    tmp_path: Path, tiny_base_model: Path
) -> None:
    settings = _settings(tmp_path)
    registry = Registry.from_settings(settings.core)
    (good,) = register_tiny_versions(registry, tiny_base_model, LABELS, 1)
    registry.promote(good.version, reason="first")
    poisoned = force_version(
        registry, write_poisoned_version(tiny_base_model, LABELS, "zebra", math.nan)
    )
    with pytest.raises(ModelLoadError, match="not finite"):
        registry.promote(poisoned.version, reason="try")
    assert registry.champion_tag() == good.tag
    with pytest.raises(ModelLoadError, match=poisoned.tag):
        ServedModel.load(poisoned, settings)


def test_cli_promote_of_a_nan_version_exits_1_naming_the_tensor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_base_model: Path
) -> None:
    settings = _settings(tmp_path)
    registry = Registry.from_settings(settings.core)
    forced = force_version(
        registry, write_poisoned_version(tiny_base_model, LABELS, "zebra", math.nan)
    )
    env = {"REFIT_STATE_DIR": str(tmp_path / "state"), "REFIT_MODEL_NAME": registry.name}
    code, out = run_refit(capsys, "models", "promote", forced.version, env=env)
    assert code == 1, out
    assert "word_embeddings.weight" in out
    assert "not finite" in out
    assert registry.champion_tag() is None


@pytest.fixture
def overflowing(tmp_path: Path, tiny_base_model: Path):  # type: ignore[no-untyped-def]
    """A handler serving a version whose weights are all finite but whose "zebra" row
    overflows to NaN in the forward pass: what the weight check cannot see."""
    settings = _settings(tmp_path)
    registry = Registry.from_settings(settings.core)
    write = write_poisoned_version(tiny_base_model, LABELS, "zebra", 3e38)
    version = registry.register(write, metadata={})  # the probe texts do not hold it
    with running_handler(version, settings, tmp_path) as handler:
        yield handler


def _flagged(version: str) -> float:
    return (
        REGISTRY.get_sample_value("refit_model_non_finite_scores_total", {"version": version}) or 0
    )


def test_a_non_finite_score_is_a_model_error_never_an_answer(overflowing: ClassifyHandler) -> None:
    version = overflowing.active.version
    before = _flagged(version)

    async def scenario() -> list[object]:
        requests = [["zebra"], ["where is my parcel"], ["a zebra", "hi"], ["refund please"]]
        tasks = [overflowing.classify(texts) for texts in requests]
        return await asyncio.gather(*tasks, return_exceptions=True)

    zebra, parcel, mixed, refund = asyncio.run(scenario())
    assert isinstance(zebra, NonFiniteScores)
    assert isinstance(mixed, NonFiniteScores)
    assert NonFiniteScores.status == 500
    assert NonFiniteScores.reason == "model"
    for answer in (parcel, refund):  # others in the same pass are answered
        json.dumps(answer, allow_nan=False)  # raises on NaN or inf
    with pytest.raises(NonFiniteScores):
        overflowing.classify_now(["zebra"])
    assert _flagged(version) == before + 4
    assert overflowing.guard.readiness() == {"non_finite_scores": {version: 4}}
    log = overflowing.log
    assert log is not None
    assert log.wait_durable(log.submitted_seq, 10)
    logged = log.read(0, 2**40)
    assert sorted(logged["text"]) == ["refund please", "where is my parcel"]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_each_float_type_is_read_in_place(tmp_path: Path, dtype: str) -> None:
    import torch
    from safetensors.torch import save_file

    from refit.core.finite_weights import check_finite_weights

    clean = {"a.weight": torch.ones(3, 4, dtype=getattr(torch, dtype)), "ids": torch.arange(5)}
    save_file(clean, str(tmp_path / "model.safetensors"))
    check_finite_weights(tmp_path, "v1")
    clean["a.weight"][1, 2] = math.nan
    save_file(clean, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"tensor a\.weight .* holds 1 values"):
        check_finite_weights(tmp_path, "v1")
