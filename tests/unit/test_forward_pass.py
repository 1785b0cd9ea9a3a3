"""The traced forward pass: the eager pass's results, and eager where a trace goes wrong."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.torch_backend import TorchBackend
from refit.core.backends.torch_pass import PassModule, trace_checked

TEXTS = [
    "hi",
    "my parcel has not arrived and the tracking page has said in transit for nine days now",
    "refund please",
    "why was I charged twice this month? " * 8,  # cut at max_length
    "🚚 配送 [SEP]",
]


def build(folder: Path, *, embeddings: bool) -> TorchBackend:
    torch.manual_seed(3)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)
    with torch.no_grad():  # spread the scores of a random model, so 1e-5 is a real check
        model.classifier.weight.mul_(50)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return TorchBackend(
        model, TextEncoder(tokenizer, 32), device=torch.device("cpu"), capture_embeddings=embeddings
    )


@pytest.mark.parametrize("embeddings", [False, True])
def test_traced_passes_give_the_eager_results(tiny_base_model: Path, embeddings: bool) -> None:
    classifier = build(tiny_base_model, embeddings=embeddings)
    eager = classifier.predict(TEXTS)
    classifier.trace()
    assert classifier.traced
    traced = classifier.predict(TEXTS)
    np.testing.assert_allclose(traced.probs, eager.probs, rtol=1e-5, atol=1e-6)
    assert traced.probs.std() > 0.01  # the comparison is not between constants
    if embeddings:
        assert traced.embeddings is not None
        assert eager.embeddings is not None
        np.testing.assert_array_equal(traced.embeddings, eager.embeddings)
    else:
        assert traced.embeddings is None
    # Shapes the trace never saw: one text, then many of mixed length with padding.
    for texts in (TEXTS[:1], TEXTS * 7):
        np.testing.assert_allclose(
            classifier.predict(texts).probs, build_eager(tiny_base_model, texts), atol=1e-6
        )


def build_eager(folder: Path, texts: list[str]) -> np.ndarray:
    return build(folder, embeddings=False).predict(texts).probs


class WidthBranch(PassModule):
    """A pass with a Python branch on the input's width, which a trace freezes."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        (probs,) = super().forward(input_ids, attention_mask)
        return (probs * 2 if input_ids.shape[1] > 8 else probs,)


def test_a_trace_that_differs_from_eager_is_refused(tiny_base_model: Path) -> None:
    classifier = build(tiny_base_model, embeddings=False)
    module = WidthBranch(classifier.model, None)
    with pytest.raises(ValueError, match="differs"):
        trace_checked(module, pad_id=0, max_length=32)


def test_the_classifier_stays_eager_when_tracing_fails(
    tiny_base_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    classifier = build(tiny_base_model, embeddings=False)
    classifier._module = WidthBranch(classifier.model, None)  # the same scores at width <= 8
    classifier._forward = classifier._module
    with caplog.at_level(logging.WARNING, logger="refit.core.backends.torch_backend"):
        classifier.trace()
    assert not classifier.traced
    assert "stay eager" in caplog.text
    assert "differs" in caplog.text
    short = classifier.predict(["hi"]).probs  # width 3: the branch leaves it alone
    np.testing.assert_allclose(short, build_eager(tiny_base_model, ["hi"]), atol=1e-6)


def test_from_folder_traces_on_request(tiny_base_model: Path, tmp_path: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=2)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(tmp_path)
    assert TorchBackend.from_folder(tmp_path, device="cpu", trace=True).traced
    assert not TorchBackend.from_folder(tmp_path, device="cpu").traced
