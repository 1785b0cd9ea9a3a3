"""A version is proven before it serves: registration, promotion, loading, startup.

Broken weights are made the two ways a store gets them: a file cut short (a copy
or an upload that stopped) and a file overwritten with other bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from runner import run_refit
from starlette.types import Message
from tiny_versions import fallback_gauge, served_registry, write_tiny_version

from refit.core.backends.torch_backend import TorchBackend
from refit.core.errors import ModelLoadError
from refit.core.registry import ModelVersion, Registry, check_version_files
from refit.service.settings import Settings

LABELS = ["billing", "shipping"]
UNREADABLE = "weights in model.safetensors cannot be read: SafetensorError"


def truncate(weights: Path) -> None:
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def overwrite(weights: Path) -> None:
    weights.write_bytes(os.urandom(weights.stat().st_size))


BREAKAGES = [pytest.param(truncate, id="truncated"), pytest.param(overwrite, id="random-bytes")]
# What safetensors says about each, after "Error while deserializing header: ".
SAFETENSORS_SAYS = {"truncate": "incomplete metadata", "overwrite": "header too large"}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(f"safe-{uuid.uuid4().hex[:8]}", tmp_path / "state")


def _writer(base: Path, seed: int = 0, damage: Callable[[Path], None] | None = None):
    write = write_tiny_version(base, LABELS, seed)

    def write_and_damage(folder: Path) -> None:
        write(folder)
        if damage is not None:
            damage(folder / "model.safetensors")

    return write_and_damage


def _assert_names_no_path(message: str, *folders: Path) -> None:
    for folder in (*folders, Path(os.environ["BENTOML_HOME"])):
        assert str(folder) not in message


# --- registration and promotion ------------------------------------------------------


@pytest.mark.parametrize("damage", BREAKAGES)
def test_register_refuses_broken_weights(
    registry: Registry, tiny_base_model: Path, damage: Callable[[Path], None]
) -> None:
    with pytest.raises(ModelLoadError) as caught:
        registry.register(_writer(tiny_base_model, damage=damage), metadata={"labels": LABELS})
    message = str(caught.value)
    assert message.startswith(f"model version {registry.name}:")
    assert f"cannot be served: {UNREADABLE}" in message
    assert SAFETENSORS_SAYS[damage.__name__] in message
    _assert_names_no_path(message)
    assert registry.versions() == []


@pytest.mark.parametrize("damage", BREAKAGES)
def test_promote_refuses_weights_broken_after_registration(
    registry: Registry, tiny_base_model: Path, damage: Callable[[Path], None]
) -> None:
    good = registry.register(_writer(tiny_base_model, 0), metadata={"labels": LABELS})
    broken = registry.register(_writer(tiny_base_model, 1), metadata={"labels": LABELS})
    registry.promote(good.version, reason="first", actor="test")
    damage(broken.path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=f"model version {broken.tag} cannot be served: "):
        registry.promote(broken.version, reason="bad", actor="test")
    assert registry.champion_tag() == good.tag
    assert [event["tag"] for event in registry.history()] == [good.tag]
    # A good version is still promoted as before.
    other = registry.register(_writer(tiny_base_model, 2), metadata={"labels": LABELS})
    assert registry.promote(other.version, reason="better", actor="test").tag == other.tag
    assert registry.champion_tag() == other.tag


def test_rollback_refuses_an_earlier_champion_that_no_longer_loads(
    registry: Registry, tiny_base_model: Path
) -> None:
    first = registry.register(_writer(tiny_base_model, 0), metadata={"labels": LABELS})
    second = registry.register(_writer(tiny_base_model, 1), metadata={"labels": LABELS})
    registry.promote(first.version, reason="first", actor="test")
    registry.promote(second.version, reason="second", actor="test")
    truncate(first.path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=UNREADABLE):
        registry.rollback()
    assert registry.champion_tag() == second.tag


def test_file_check_messages_name_the_version_not_its_folder(
    registry: Registry, tiny_base_model: Path
) -> None:
    version = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    (version.path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError) as caught:
        registry.promote(version.version, reason="test", actor="test")
    assert str(caught.value) == f"model version {version.tag} lacks model.safetensors"
    with pytest.raises(ModelLoadError) as caught:
        check_version_files(version.path)
    _assert_names_no_path(str(caught.value), version.path)


def test_cli_promote_of_broken_weights_exits_1_with_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_base_model: Path
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    registry = Registry(name, tmp_path / "state")
    version = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    overwrite(version.path / "model.safetensors")
    env = {"REFIT_STATE_DIR": str(tmp_path / "state"), "REFIT_MODEL_NAME": name}
    code, out = run_refit(capsys, "models", "promote", version.version, env=env)
    assert code == 1, out
    errors = [line for line in out.splitlines() if "cannot be served" in line]
    assert len(errors) == 1, out
    assert version.tag in errors[0]
    assert "weights in model.safetensors cannot be read" in errors[0]
    _assert_names_no_path(out, tmp_path)
    assert registry.champion_tag() is None


# --- loading ------------------------------------------------------------------------


def _damage_tokenizer_bytes(folder: Path) -> None:
    (folder / "tokenizer.json").write_bytes(b"\x91\x92" + os.urandom(300))


def _damage_tokenizer_shape(folder: Path) -> None:
    (folder / "tokenizer.json").write_text("{}")


def _damage_config(folder: Path) -> None:
    (folder / "config.json").write_text("{not json")


def _damage_weights(folder: Path) -> None:
    overwrite(folder / "model.safetensors")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            _damage_tokenizer_bytes,
            "the tokenizer cannot be loaded: ValueError: tokenizer.json cannot be parsed: "
            "stream did not contain valid UTF-8",
        ),
        (
            _damage_tokenizer_shape,
            "the tokenizer cannot be loaded: ValueError: tokenizer.json cannot be parsed: "
            "Model missing",
        ),
        # The tokenizer is read without config.json (core/tokenizer_file.py); the model is not.
        (
            _damage_config,
            "the model cannot be built from config.json and model.safetensors: OSError: "
            "It looks like the config file at 'config.json' is not a valid JSON file",
        ),
        (_damage_weights, UNREADABLE),
    ],
    ids=["tokenizer-bytes", "tokenizer-keys", "config-json", "weights"],
)
def test_from_folder_turns_any_load_failure_into_a_model_load_error(
    tmp_path: Path, tiny_base_model: Path, damage: Callable[[Path], None], expected: str
) -> None:
    folder = tmp_path / "version"
    write_tiny_version(tiny_base_model, LABELS)(folder)
    damage(folder)
    with pytest.raises(ModelLoadError) as caught:
        TorchBackend.from_folder(folder, device="cpu")
    assert str(caught.value).startswith(expected)
    _assert_names_no_path(str(caught.value), folder)


# --- startup ------------------------------------------------------------------------


@pytest.fixture
def history(tmp_path: Path, tiny_base_model: Path) -> tuple[Settings, Registry, list[ModelVersion]]:
    """Three versions, each promoted in turn: v2 is champion, v1 before it, v0 first."""
    settings, registry, versions = served_registry(tmp_path, tiny_base_model, LABELS, "start")
    for version in versions:
        registry.promote(version.version, reason="next", actor="test")
    return settings, registry, versions


def test_startup_serves_the_previous_champion_when_the_champion_does_not_load(
    history, caplog: pytest.LogCaptureFixture
) -> None:
    from refit.service.model.hot_swap import HotSwapper
    from refit.service.model.startup import load_served_model
    from refit.service.scheduling.classify import ClassifyHandler

    settings, registry, (v0, v1, v2) = history
    truncate(v2.path / "model.safetensors")
    with caplog.at_level(logging.INFO):
        served = load_served_model(registry, v2.version, settings)
    assert served.version.tag == v1.tag
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"serving {v1.tag} instead" in errors[0].getMessage()
    assert UNREADABLE in errors[0].getMessage()
    assert errors[0].exc_info is None

    swapper = HotSwapper(ClassifyHandler(served, settings, log=None), settings)
    state = swapper.readiness()
    assert {k: state[k] for k in ("serving", "champion", "fallback", "reason")} == {
        "serving": v1.tag,
        "champion": v2.tag,
        "fallback": True,
        "reason": served.refused[v2.tag],
    }
    assert UNREADABLE in state["reason"]
    assert fallback_gauge(v2, v1) == 1
    # The broken champion is not tried again by the watcher; a new promotion is followed.
    assert swapper.swap_to_champion().reason == "refused before"
    registry.promote(v0.version, reason="known good", actor="test")
    assert swapper.swap_to_champion().outcome == "swapped"
    assert swapper.readiness()["fallback"] is False
    assert fallback_gauge(v2, v1) == 0


def test_startup_walks_the_history_past_every_version_that_does_not_load(history) -> None:
    from refit.service.model.startup import earlier_champions, load_served_model

    settings, registry, (v0, v1, v2) = history
    assert earlier_champions(registry.history(), v2.tag) == [v1.tag, v0.tag]
    overwrite(v2.path / "model.safetensors")
    truncate(v1.path / "model.safetensors")
    served = load_served_model(registry, v2.version, settings)
    assert served.version.tag == v0.tag
    assert set(served.refused) == {v2.tag, v1.tag}


def test_startup_with_nothing_loadable_fails_once_and_stops_the_server(
    history, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import refit.service.model.startup as startup
    import refit.service.model.stop_reason as stop_reason

    settings, registry, versions = history
    for version in versions:
        overwrite(version.path / "model.safetensors")
    signals: list[tuple[int, int]] = []
    monkeypatch.setattr("os.kill", lambda pid, sig: signals.append((pid, sig)))
    with pytest.raises(ModelLoadError, match=r"no version of model .* can be served") as caught:
        startup.load_served_model(registry, versions[-1].version, settings)
    assert signals == []  # not a BentoML worker: nothing to stop
    assert all(v.tag in str(caught.value) for v in versions)
    monkeypatch.setattr(stop_reason, "is_worker_process", lambda: True)
    reason = tmp_path / "stop-reason"
    monkeypatch.setenv(stop_reason.STOP_REASON_VAR, str(reason))
    with pytest.raises(ModelLoadError) as caught:
        startup.load_served_model(registry, versions[-1].version, settings)
    assert signals == [(os.getppid(), signal.SIGTERM)]
    assert stop_reason.stop_reason(reason) == str(caught.value)  # for `refit serve` to exit with


# --- /readyz ------------------------------------------------------------------------


def test_readyz_body_carries_the_worker_state() -> None:
    import refit.service.model.readiness as readiness

    state = {"serving": "m:1", "champion": "m:2", "fallback": True, "reason": "broken"}

    async def bentoml_readyz(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"\n"})

    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("a GET /readyz has no body to read")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/readyz", "method": "GET"}
    asyncio.run(
        readiness.ReadinessDetails(bentoml_readyz, state=lambda: state)(scope, receive, send)
    )
    assert sent[0]["status"] == 200
    assert json.loads(sent[1]["body"]) == {"ready": True, **state}
