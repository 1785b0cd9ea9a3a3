"""Every backend against torch eager on the tiny model: same labels, close scores and
embeddings, and a batch scores each text as it scores that text alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from backend_versions import BACKENDS, LABELS, exported_version, load
from cases import MIXED_TEXTS as TEXTS

from refit.core.backends.base import Backend
from refit.core.backends.record import BackendRecord
from refit.training.recheck_tuning import STEPS

# How far each backend's probabilities (absolute) and embeddings (cosine distance) may
# be from torch eager's. fp32 engines differ by float rounding only (the embeddings are
# float16); int8 weights move scores by a few hundredths.
TOLERANCE = {
    "torch-eager": (0.0, 1e-12),
    "torch-traced": (1e-5, 1e-5),
    "onnx-fp32": (1e-5, 1e-5),
    "torch-int8": (0.05, 0.02),
    "onnx-int8": (0.05, 0.02),
}


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return 1 - (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def exported(tiny_base_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("backends") / "version"
    exported_version(tiny_base_model, folder)
    return folder


@pytest.fixture(scope="module")
def backends(exported: Path) -> dict[str, Backend]:
    return {name: load(exported, name) for name in BACKENDS}


def test_each_backend_loads_as_itself(backends: dict[str, Backend]) -> None:
    assert {name: b.name for name, b in backends.items()} == {n: n for n in BACKENDS}
    assert all(b.labels == tuple(LABELS) and b.device == "cpu" for b in backends.values())


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_gives_torch_eager_labels_and_close_scores(
    backends: dict[str, Backend], name: str
) -> None:
    want = backends["torch-eager"].predict(TEXTS)
    got = backends[name].predict(TEXTS)
    assert np.ptp(want.probs[:, 0]) > 0.05  # the texts score apart: the check means something
    assert got.label_ids.tolist() == want.label_ids.tolist()
    probs_atol, embedding_distance = TOLERANCE[name]
    np.testing.assert_allclose(got.probs, want.probs, atol=probs_atol)
    assert got.embeddings is not None
    assert want.embeddings is not None
    assert got.embeddings.dtype == np.float16
    assert got.embeddings.shape == (len(TEXTS), 32)
    assert cosine_distance(got.embeddings, want.embeddings).max() <= embedding_distance
    assert got.n_tokens.tolist() == want.n_tokens.tolist()
    assert got.truncated.tolist() == want.truncated.tolist()


@pytest.mark.parametrize("name", list(BACKENDS))
def test_a_batch_scores_each_text_as_it_scores_it_alone(
    backends: dict[str, Backend], name: str
) -> None:
    """TEI's batch == single. Dynamic int8 computes each activation's scale over the
    whole pass, padding and neighbours included, so its scores move a little with the
    company a text keeps; its labels must not."""
    backend = backends[name]
    batched = backend.predict(TEXTS)
    alone = [backend.predict([text]) for text in TEXTS]
    assert [a.label_ids[0] for a in alone] == batched.label_ids.tolist()
    probs_atol, embedding_distance = (1e-4, 1e-5) if "int8" not in name else (0.05, 0.02)
    np.testing.assert_allclose(
        np.stack([a.probs[0] for a in alone]), batched.probs, atol=probs_atol
    )
    embeddings = np.stack([a.embeddings[0] for a in alone if a.embeddings is not None])
    assert batched.embeddings is not None
    assert cosine_distance(embeddings, batched.embeddings).max() <= embedding_distance


def test_the_record_names_every_candidate_and_keeps_one_int8_graph(exported: Path) -> None:
    record = BackendRecord.model_validate_json((exported / "backends.json").read_text())
    names = [(c.backend, c.method) for c in record.candidates]
    assert names[:3] == [("torch-traced", ""), ("torch-int8", ""), ("onnx-fp32", "")]
    int8 = [c for c in record.candidates if c.backend == "onnx-int8"]
    assert sorted(c.method for c in int8 if c.recheck_margin is None) == [
        "dynamic, per channel",
        "dynamic, per channel, feed-forward outputs fp32",
        "dynamic, per tensor",
        "static, 64 calibration texts",
    ]
    plain = {c.method for c in int8}
    for twin in (c for c in int8 if c.recheck_margin is not None):
        # A variant that gave some tuning text another label than fp32 comes back with
        # its close calls rechecked, judged on the same test texts as the others.
        assert twin.method.removesuffix(", close calls rechecked on fp32") in plain
        assert twin.recheck_margin in STEPS
        assert twin.recheck_share is not None
        assert 0 < twin.recheck_share <= 1
    kept = [c for c in record.candidates if c.backend == "onnx-int8" and c.kept]
    assert len(kept) == 1
    assert kept[0].file == "model.int8.onnx"
    assert sorted(p.name for p in exported.glob("*.onnx")) == ["model.int8.onnx", "model.onnx"]
    for c in record.candidates:
        assert not c.error
        assert c.label_agreement is not None
        assert c.ratio_batch1 is not None
    # No labelled test split here: macro-F1 is unknown, so auto keeps torch, and says why.
    assert record.labelled is False
    assert record.auto_cpu == "torch"
    assert "macro-F1 unknown" in record.auto_reason
