"""int8 with its close calls rechecked on fp32: the margin chosen on tuning texts, the
rows past it answered by fp32, and a version whose record asks for it loading so."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from backend_versions import LABELS, exported_version, load
from cases import MIXED_TEXTS as TEXTS

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.onnx_backend import OnnxBackend, Recheck, session_for
from refit.core.backends.recheck import close_calls, top_margin
from refit.core.backends.record import read_record
from refit.training.recheck_tuning import STEPS, share_within, tuned_margin


def rows(*pairs: tuple[float, float]) -> np.ndarray:
    """Two-label probabilities, one row per (first, second)."""
    return np.array(pairs, dtype=np.float32)


def test_top_margin_is_the_gap_between_the_two_highest() -> None:
    probs = np.array([[0.1, 0.6, 0.3], [0.34, 0.33, 0.33]], dtype=np.float32)
    np.testing.assert_allclose(top_margin(probs), [0.3, 0.01], atol=1e-6)
    assert close_calls(probs, 0.05).tolist() == [1]
    assert top_margin(np.ones((2, 1), dtype=np.float32)).tolist() == [1.0, 1.0]


def test_no_margin_where_int8_already_agrees_everywhere() -> None:
    fp32 = rows((0.9, 0.1), (0.2, 0.8))
    assert tuned_margin(fp32, rows((0.8, 0.2), (0.3, 0.7))) is None


def test_the_margin_is_the_smallest_step_that_recovers_the_disagreements() -> None:
    # 100 confident texts, then two near-ties int8 flipped: margins 0.004 and 0.04.
    fp32 = np.vstack([np.tile([0.95, 0.05], (100, 1)), rows((0.51, 0.49), (0.52, 0.48))])
    int8 = np.vstack([np.tile([0.94, 0.06], (100, 1)), rows((0.498, 0.502), (0.48, 0.52))])
    assert tuned_margin(fp32, int8) == 0.05
    assert share_within(int8, 0.05) == pytest.approx(2 / 102)
    # A flip no step reaches still gets the largest step: it recovers what it can.
    far = np.vstack([int8, rows((0.1, 0.9))])
    assert tuned_margin(np.vstack([fp32, rows((0.6, 0.4))]), far) == STEPS[-1]


@pytest.fixture(scope="module")
def exported(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recheck") / "version"
    exported_version(tiny_base_model, folder)
    return folder


def int8_backend(folder: Path, margin: float | None) -> OnnxBackend:
    recheck = None if margin is None else Recheck(session_for(folder / "model.onnx"), margin)
    return OnnxBackend(
        session_for(folder / "model.int8.onnx"),
        TextEncoder.from_folder(folder, 32),
        LABELS,
        name="onnx-int8",
        capture_embeddings=True,
        recheck=recheck,
    )


def test_rows_within_the_margin_get_fp32_answers_and_the_others_keep_int8s(
    exported: Path,
) -> None:
    fp32, plain = load(exported, "onnx-fp32").predict(TEXTS), int8_backend(exported, None)
    int8 = plain.predict(TEXTS)
    assert np.abs(int8.probs - fp32.probs).max() > 1e-4  # int8 differs: the test can see
    margin = float(np.median(top_margin(int8.probs)))
    close = set(close_calls(int8.probs, margin).tolist())
    assert 0 < len(close) < len(TEXTS)
    rechecking = int8_backend(exported, margin)
    # One text at a time, so that each int8 pass sees the company it saw above alone.
    for i, text in enumerate(TEXTS):
        alone_int8 = plain.predict([text])
        got = rechecking.predict([text])
        want = fp32 if top_margin(alone_int8.probs)[0] < margin else alone_int8
        row = 0 if want is alone_int8 else i
        np.testing.assert_allclose(got.probs[0], want.probs[row], atol=1e-6)
        assert got.embeddings is not None
        assert want.embeddings is not None
        np.testing.assert_array_equal(got.embeddings[0], want.embeddings[row])
    assert int8.rechecked == 0
    assert rechecking.predict(TEXTS).rechecked == len(close)
    everything = int8_backend(exported, 2.0).predict(TEXTS)
    np.testing.assert_allclose(everything.probs, fp32.probs, atol=1e-6)
    assert everything.rechecked == len(TEXTS)


@pytest.fixture
def asks_for_recheck(exported: Path, tmp_path: Path) -> Path:
    """A copy of the version whose kept int8 variant's record says: recheck below 0.05."""
    folder = tmp_path / "version"
    shutil.copytree(exported, folder)
    record = json.loads((folder / "backends.json").read_text())
    for c in record["candidates"]:
        if c["backend"] == "onnx-int8" and c["kept"]:
            c.update(recheck_margin=0.05, recheck_share=0.04)
    (folder / "backends.json").write_text(json.dumps(record))
    return folder


def test_a_record_that_asks_for_recheck_loads_the_fp32_graph_beside_int8(
    asks_for_recheck: Path,
) -> None:
    backend = load(asks_for_recheck, "onnx-int8")
    assert isinstance(backend, OnnxBackend)
    assert backend.recheck is not None
    assert backend.recheck.margin == 0.05
    # Its pool must not spin for work beside the int8 session's on the same cores.
    options = backend.recheck.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert "close calls, margin < 0.05, rechecked on fp32" in backend.reason
    record, _ = read_record(asks_for_recheck)
    assert record is not None
    kept = record.kept("onnx-int8")
    assert kept is not None
    assert kept.described.startswith("onnx-int8 (close calls")


def test_a_damaged_fp32_graph_gives_way_to_torch_for_a_rechecking_int8(
    asks_for_recheck: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fp32 = asks_for_recheck / "model.onnx"
    fp32.write_bytes(fp32.read_bytes()[: fp32.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="refit.core.backends.loading"):
        backend = load(asks_for_recheck, "onnx-int8")
    assert backend.name == "torch-eager"
    assert "model.onnx is not the file that was verified" in backend.reason
