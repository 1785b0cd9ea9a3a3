"""Export and verification: at registration, at a version's first load, and with
`refit models export`; a damaged ONNX file gives way to torch."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import bentoml
import pytest
from backend_versions import register_spread_version
from runner import run_refit

from refit.core.backends.loading import BackendOptions, load_backend
from refit.core.backends.record import BackendRecord, read_record
from refit.core.registry import ModelVersion
from refit.service.model.predictor import ServedModel
from refit.service.settings import Settings
from refit.training.train import train

ONNX = BackendOptions("onnx", "cpu", max_length=64)
ONNX_INT8 = BackendOptions("onnx-int8", "cpu", max_length=64)


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory, tiny_settings: Callable[..., Settings]
) -> ModelVersion:
    """A version `refit train` registered, with export on (its default)."""
    state = tmp_path_factory.mktemp("export-state")
    return train(tiny_settings(state, "exported", export_backends=True)).version


def test_registration_exports_verifies_and_records_every_backend(
    registered: ModelVersion,
) -> None:
    record, why = read_record(registered.path)
    assert record is not None, why
    test_rows = registered.read_json("training.json")["split_sizes"]["test"]
    assert record.labelled
    assert record.texts == test_rows
    assert record.data == f"test split ({test_rows} texts)"
    reference = record.candidates[0]
    assert reference.backend == "torch-traced"
    # The reference's macro-F1 on the test split is the one the version was registered with.
    assert reference.macro_f1 == pytest.approx(registered.metadata["test_macro_f1"], abs=5e-5)
    for c in record.candidates[1:]:
        assert not c.error, c
        assert c.macro_f1_diff is not None
        assert c.ratio_batch1 is not None
        assert c.ratio_batch32 is not None
    assert (registered.path / "model.onnx").is_file()
    assert (registered.path / "model.int8.onnx").is_file()
    assert record.auto_cpu in {"torch", "torch-int8", "onnx-fp32", "onnx-int8"}
    card = (registered.path / "model_card.md").read_text()
    section = card[card.index("## Backends") :]
    for c in record.candidates:
        assert c.backend in section
    assert f"REFIT_BACKEND=auto on a CPU serves **{record.auto_cpu}**" in section
    assert card.count("## Backends") == 1


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), id="cut"),
        pytest.param(lambda p: shutil.copyfile(p.with_name("model.onnx"), p), id="other-graph"),
    ],
)
def test_a_damaged_onnx_file_gives_way_to_torch_with_one_log_line(
    registered: ModelVersion,
    tmp_path: Path,
    damage: Callable[[Path], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "version"
    shutil.copytree(registered.path, folder)
    damage(folder / "model.int8.onnx")
    with caplog.at_level(logging.WARNING, logger="refit.core.backends.loading"):
        backend = load_backend(folder, labels_of(folder), ONNX_INT8)
    assert backend.name == "torch-eager"
    assert backend.reason.startswith("onnx-int8 failed to load")
    assert len(caplog.records) == 1
    assert "serving torch instead" in caplog.records[0].getMessage()
    assert backend.predict(["where is my parcel"]).probs.shape == (1, len(labels_of(folder)))
    # The fp32 graph is untouched and still serves.
    assert load_backend(folder, labels_of(folder), ONNX).name == "onnx-fp32"


def labels_of(folder: Path) -> list[str]:
    return json.loads((folder / "labels.json").read_text())


@pytest.fixture
def old_version(tmp_path: Path, tiny_base_model: Path) -> tuple[Settings, ModelVersion]:
    """A version registered the way refit did before it exported backends: no ONNX files,
    no backends.json, no test split."""
    settings, registry, version = register_spread_version(
        tiny_base_model, tmp_path, "old", monitoring=False, max_length=32
    )
    registry.promote(version.version, reason="old", actor="test")
    assert not list(version.path.glob("*.onnx"))
    return settings, version


def test_refit_models_export_exports_an_old_version_once(
    old_version: tuple[Settings, ModelVersion], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, version = old_version
    env = {
        "REFIT_STATE_DIR": str(settings.core.state_dir),
        "REFIT_MODEL_NAME": settings.core.model_name,
        "REFIT_MAX_LENGTH": "32",
    }
    code, out = run_refit(capsys, "models", "export", version.version, "--json", env=env)
    assert code == 0, out
    printed = BackendRecord.model_validate_json(out)
    assert read_record(version.path)[0] == printed
    assert sorted(p.name for p in version.path.glob("*.onnx")) == ["model.int8.onnx", "model.onnx"]
    # The workers' lock lies beside the version's folder, where BentoML's listing ignores it.
    assert (version.path.parent / f".{version.version}.export.lock").is_file()
    listed = {str(m.tag.version) for m in bentoml.models.list(settings.core.model_name)}
    assert version.version in listed
    assert not any(name.startswith(".") for name in listed)
    # Without a test split it is compared on generated texts, and auto keeps torch.
    assert printed.labelled is False
    assert printed.auto_cpu == "torch"
    # A second run keeps the record; --force makes a new one.
    code, out = run_refit(capsys, "models", "export", version.version, "--json", env=env)
    assert BackendRecord.model_validate_json(out).created == printed.created
    code, out = run_refit(capsys, "models", "export", version.version, env=env)
    assert code == 0
    assert "onnx-int8" in out
    assert "auto on a CPU serves torch" in out


def test_an_old_version_is_exported_at_its_first_load_and_serves_on_onnx(
    old_version: tuple[Settings, ModelVersion], caplog: pytest.LogCaptureFixture
) -> None:
    settings, version = old_version
    onnx = settings.with_overrides(backend="onnx")
    with caplog.at_level(logging.INFO, logger="refit.training.export_later"):
        served = ServedModel.load(version, onnx)
    assert "had no ONNX export: exported and verified" in caplog.text
    assert read_record(version.path)[0] is not None
    assert served.classifier.name == "onnx-fp32"
    # Named, it serves, though without a labelled test split auto would not have chosen it.
    assert served.classifier.reason.startswith("REFIT_BACKEND=onnx (it misses the rules")
    # auto: the record says torch (no labelled test split to judge the others on).
    auto = ServedModel.load(version, settings)
    assert auto.classifier.name == "torch-traced"
    assert "macro-F1 unknown" in auto.classifier.reason


def test_no_export_at_load_when_turned_off_or_the_folder_is_read_only(
    old_version: tuple[Settings, ModelVersion],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, version = old_version
    served = ServedModel.load(version, settings.with_overrides(export_backends=False))
    assert served.classifier.name == "torch-traced"
    assert "no backends.json" in served.classifier.reason
    monkeypatch.setattr("refit.training.export_later.writable", lambda folder: False)
    with caplog.at_level(logging.WARNING, logger="refit.training.export_later"):
        served = ServedModel.load(version, settings.with_overrides(backend="onnx-int8"))
    assert "folder is read-only: torch serves it" in caplog.text
    assert served.classifier.name == "torch-traced"
    assert "refit models export" in served.classifier.reason
    assert not list(version.path.glob("*.onnx"))
    assert read_record(version.path)[0] is None


def test_a_hot_swap_serves_the_new_version_on_its_backend_and_says_so(
    registered: ModelVersion, tmp_path: Path, tiny_base_model: Path
) -> None:
    from prometheus_client import REGISTRY

    from refit.service.model.hot_swap import HotSwapper
    from refit.service.scheduling.classify import ClassifyHandler

    settings, registry, plain = register_spread_version(
        tiny_base_model,
        tmp_path,
        "swap-backend",
        monitoring=True,
        reload_interval_s=0,
        backend="onnx",
        export_backends=False,
        max_length=64,
    )
    exported = registry.register(
        lambda folder: shutil.copytree(registered.path, folder, dirs_exist_ok=True),
        metadata=registered.metadata,
    )
    registry.promote(plain.version, reason="first", actor="test")
    swapper = HotSwapper(
        ClassifyHandler(ServedModel.load(plain, settings), settings, log=None), settings
    )
    before = swapper.readiness()
    assert before["backend"] == "torch-traced"
    assert "REFIT_BACKEND=onnx, but" in before["backend_reason"]
    registry.promote(exported.version, reason="next", actor="test")
    assert swapper.swap_to_champion().outcome == "swapped"
    after = swapper.readiness()
    assert (after["serving"], after["backend"], after["device"]) == (
        exported.tag,
        "onnx-fp32",
        "cpu",
    )

    def info(version: ModelVersion, backend: str) -> float | None:
        labels = {"version": version.version, "backend": backend}
        labels["base_model"] = str(version.metadata.get("base_model", ""))
        return REGISTRY.get_sample_value("refit_model_info", labels)

    assert info(exported, "onnx-fp32") == 1
    assert info(plain, "torch-traced") == 0
