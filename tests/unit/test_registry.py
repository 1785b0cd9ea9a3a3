"""Model versions in the BentoML store and the champion pointer."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from tiny_versions import write_tiny_version

from refit.core.errors import ModelLoadError, ModelNotFoundError
from refit.core.registry import Registry, check_version_files

LABELS = ["no", "yes"]


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    # A fresh model name per test keeps versions apart in the session's model store.
    return Registry(f"reg-{uuid.uuid4().hex[:8]}", tmp_path / "state")


def _writer(tiny_base_model: Path, labels: list[str] = LABELS):
    return write_tiny_version(tiny_base_model, labels)


def test_registered_versions_are_listed_newest_first(
    registry: Registry, tiny_base_model: Path
) -> None:
    first = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS, "n": 1})
    second = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS, "n": 2})
    assert [v.version for v in registry.versions()] == [second.version, first.version]
    assert second.metadata["n"] == 2
    assert second.labels == LABELS
    assert (second.path / "model.safetensors").stat().st_mode & 0o777 == 0o644


def test_champion_is_none_until_promoted_then_logged(
    registry: Registry, tiny_base_model: Path
) -> None:
    version = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    assert registry.champion() is None
    with pytest.raises(ModelNotFoundError, match="no champion"):
        registry.get()
    registry.promote(version.version, reason="first", actor="test")
    assert registry.champion_tag() == version.tag
    assert registry.get().version == version.version
    newer = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    registry.promote(newer.version, reason="better", actor="test")
    history = registry.history()
    assert [h["tag"] for h in history] == [version.tag, newer.tag]
    assert history[1]["previous"] == version.tag
    assert history[1]["reason"] == "better"


def test_unknown_version_names_the_remedy(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError, match="refit models list"):
        registry.get("doesnotexist")


def test_serving_tag_prefers_champion_then_newest(
    registry: Registry, tiny_base_model: Path
) -> None:
    with pytest.raises(ModelNotFoundError, match="refit train"):
        registry.serving_tag()
    old = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    new = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    assert registry.serving_tag() == new.tag
    registry.promote(old.version, reason="pin", actor="test")
    assert registry.serving_tag() == old.tag


def test_version_with_missing_weights_is_refused(tmp_path: Path, tiny_base_model: Path) -> None:
    _writer(tiny_base_model)(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"lacks model\.safetensors"):
        check_version_files(tmp_path)


def test_version_with_pickled_weights_is_refused(tmp_path: Path, tiny_base_model: Path) -> None:
    _writer(tiny_base_model)(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ModelLoadError, match="pickled weights"):
        check_version_files(tmp_path)


def test_version_whose_label_file_disagrees_with_weights_is_refused(
    tmp_path: Path, tiny_base_model: Path
) -> None:
    _writer(tiny_base_model)(tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps(["yes", "no"]))
    with pytest.raises(ModelLoadError, match="does not match"):
        check_version_files(tmp_path)


def test_register_refuses_an_incomplete_version(registry: Registry, tmp_path: Path) -> None:
    def write(folder: Path) -> None:
        (folder / "labels.json").write_text("[]")

    with pytest.raises(ModelLoadError):
        registry.register(write, metadata={})
    assert registry.versions() == []


def test_rollback_undoes_the_latest_promotion(registry: Registry, tiny_base_model: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no earlier champion"):
        registry.rollback()
    first = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    second = registry.register(_writer(tiny_base_model), metadata={"labels": LABELS})
    registry.promote(first.version, reason="first", actor="test")
    with pytest.raises(ModelNotFoundError):
        registry.rollback()  # the first promotion has nothing before it
    registry.promote(second.version, reason="better", actor="test")
    assert registry.rollback(reason="worse in production").tag == first.tag
    assert registry.champion_tag() == first.tag
    assert registry.history()[-1]["reason"] == "worse in production"
