"""What exists when a worker has started is frozen out of full collections, and a
model swapped out later is freed all the same."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_versions import served_registry

from refit.service.model.frozen_heap import freeze_heap
from refit.service.model.predictor import ServedModel


@pytest.fixture
def frozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def test_objects_alive_at_freezing_are_left_out_of_collections(frozen: None) -> None:
    kept = [object()]
    assert any(o is kept for o in gc.get_objects())
    assert freeze_heap() > 0
    assert not any(o is kept for o in gc.get_objects())
    later = [object()]
    assert any(o is later for o in gc.get_objects())


def test_a_frozen_model_is_freed_when_its_last_reference_goes(
    tmp_path: Path, tiny_base_model: Path, frozen: None
) -> None:
    settings, _, versions = served_registry(tmp_path, tiny_base_model, ["a", "b"], "heap")
    served = ServedModel.load(versions[0], settings)
    served.classifier.predict(["where is my parcel", "refund"])  # traced, warmed up
    refs: list[weakref.ref[Any]] = [weakref.ref(served), weakref.ref(served.classifier)]
    freeze_heap()
    gc.disable()  # only reference counting may free it
    try:
        del served
        assert [ref() for ref in refs] == [None, None]
    finally:
        gc.enable()
