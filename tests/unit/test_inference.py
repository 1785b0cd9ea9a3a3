"""The batch-first predictor: bucketing, batch == single, truncation, order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from cases import MIXED_TEXTS as TEXTS
from tiny_versions import tiny_classifier
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from refit.core.backends.base import plan_buckets
from refit.core.backends.encoding import TextEncoder
from refit.core.backends.torch_backend import TorchBackend

LABELS = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def classifier(tiny_base_model: Path) -> TorchBackend:
    model = tiny_classifier(tiny_base_model, LABELS, seed=1)
    # A random model scores every text almost alike; scaling the pooler and the head
    # spreads the scores so that comparisons at 1e-4 below are meaningful.
    with torch.no_grad():
        model.bert.pooler.dense.weight.mul_(20)
        model.classifier.weight.mul_(50)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    return TorchBackend(model, TextEncoder(tokenizer, 32), device=torch.device("cpu"))


def test_buckets_cover_every_item_once_and_respect_the_token_budget() -> None:
    lengths = np.array([5, 120, 7, 6, 118, 30, 5, 64])
    buckets = plan_buckets(lengths, max_batch_tokens=256, overhead_tokens=48)
    flat = np.concatenate(buckets)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for bucket in buckets:
        assert len(bucket) * lengths[bucket].max() <= 256 or len(bucket) == 1


def test_buckets_separate_short_from_long_items() -> None:
    lengths = np.array([4, 4, 4, 4, 100, 4, 100, 4])
    buckets = plan_buckets(lengths, max_batch_tokens=10_000, overhead_tokens=48)
    as_sets = [set(lengths[b].tolist()) for b in buckets]
    assert as_sets == [{4}, {100}]


def test_high_overhead_keeps_one_bucket() -> None:
    """On a GPU a forward pass costs more than padding: everything fits in one bucket."""
    lengths = np.array([4, 100, 7, 60])
    assert len(plan_buckets(lengths, max_batch_tokens=10_000, overhead_tokens=8192)) == 1


def test_batched_predictions_equal_single_predictions(classifier: TorchBackend) -> None:
    batched = classifier.predict(TEXTS)
    for i, text in enumerate(TEXTS):
        single = classifier.predict([text])
        assert single.label_ids[0] == batched.label_ids[i]
        np.testing.assert_allclose(single.probs[0], batched.probs[i], atol=1e-4)


def test_predictions_keep_input_order(classifier: TorchBackend) -> None:
    forward = classifier.predict(TEXTS).probs
    backward = classifier.predict(TEXTS[::-1]).probs[::-1]
    np.testing.assert_allclose(forward, backward, atol=1e-4)


def test_probabilities_sum_to_one_and_labels_come_from_config(
    classifier: TorchBackend,
) -> None:
    out = classifier.predict(TEXTS)
    np.testing.assert_allclose(out.probs.sum(axis=1), 1.0, atol=1e-5)
    assert classifier.labels == tuple(LABELS)
    # Texts must score differently, or the batch == single comparison proves nothing.
    assert np.ptp(out.probs[:, 0]) > 1e-3


def test_long_texts_are_truncated_and_flagged(classifier: TorchBackend) -> None:
    out = classifier.predict(["short one", "word " * 200])
    assert out.truncated.tolist() == [False, True]
    assert out.n_tokens[1] == classifier.max_length
    assert out.n_tokens[0] < classifier.max_length


def test_truncated_text_scores_like_its_first_tokens(
    classifier: TorchBackend, tiny_base_model: Path
) -> None:
    """Cutting keeps [CLS] ... [SEP], the same input the tokenizer's own truncation gives."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    long_text = "the order never came and nobody answers my emails " * 20
    ids = tokenizer(long_text, truncation=True, max_length=classifier.max_length)["input_ids"]
    with torch.inference_mode():
        logits = classifier.model(input_ids=torch.tensor([ids])).logits
    expected = torch.softmax(logits, dim=-1).numpy()[0]
    np.testing.assert_allclose(classifier.predict([long_text]).probs[0], expected, atol=1e-5)


def test_embeddings_are_small_stable_and_batch_independent(tiny_base_model: Path) -> None:
    torch.manual_seed(2)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=2)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    classifier = TorchBackend(
        model, TextEncoder(tokenizer, 32), device=torch.device("cpu"), capture_embeddings=True
    )
    batched = classifier.predict(TEXTS)
    assert batched.embeddings is not None
    assert batched.embeddings.shape == (len(TEXTS), 32)
    assert batched.embeddings.dtype == np.float16
    for i, text in enumerate(TEXTS):
        single = classifier.predict([text]).embeddings
        assert single is not None
        np.testing.assert_allclose(single[0], batched.embeddings[i], atol=2e-3)
    # Different texts land in different places.
    assert np.abs(batched.embeddings[0] - batched.embeddings[1]).max() > 1e-2


def test_unknown_tokens_are_counted(classifier: TorchBackend) -> None:
    out = classifier.predict(["plain words", "\u2603\u2603 snowmen \u2603"])
    assert out.unknown_tokens is not None
    assert out.unknown_tokens[0] == 0
    assert out.unknown_tokens[1] >= 1
    assert out.embeddings is None  # not asked for


def test_int8_backend_quantizes_the_attention_projections_and_still_predicts(
    tiny_base_model: Path,
) -> None:
    import json

    folder = tiny_base_model.parent / "tiny-int8"
    if not folder.exists():
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(
            tiny_base_model, num_labels=2, id2label={0: "a", 1: "b"}, label2id={"a": 0, "b": 1}
        )
        model.save_pretrained(folder)
        AutoTokenizer.from_pretrained(tiny_base_model).save_pretrained(folder)
        (folder / "labels.json").write_text(json.dumps(["a", "b"]))
    fp32 = TorchBackend.from_folder(folder, device="cpu", max_length=32)
    int8 = TorchBackend.from_folder(folder, device="cpu", max_length=32, int8=True)
    quantized = {
        name
        for name, m in int8.model.named_modules()
        if type(m).__module__.startswith("torch.ao.nn.quantized.dynamic")
    }
    assert quantized
    assert all(".attention." in name for name in quantized)
    assert {name.rsplit(".", 1)[-1] for name in quantized} == {"query", "key", "value", "dense"}
    # per-channel scales: one per output feature, not one per tensor
    weight = int8.model.get_submodule(sorted(quantized)[0]).weight()
    assert weight.qscheme() == torch.per_channel_affine
    assert isinstance(int8.model.get_submodule("classifier"), torch.nn.Linear)
    np.testing.assert_allclose(int8.predict(TEXTS).probs, fp32.predict(TEXTS).probs, atol=0.05)
    # Serving traces the quantized model too (core/forward_pass.py): the same scores.
    traced = TorchBackend.from_folder(folder, device="cpu", max_length=32, int8=True, trace=True)
    assert traced.traced
    np.testing.assert_allclose(traced.predict(TEXTS).probs, int8.predict(TEXTS).probs, atol=1e-5)


def test_one_text_encodes_as_it_would_in_a_batch(classifier: TorchBackend) -> None:
    """A lone text takes the GIL-holding path (core.token_ids), a batch the tokenizer's call."""
    texts = ["word " * 300, "short one", "🚚 配送 [SEP]"]
    together = classifier.encode(texts)
    for i, text in enumerate(texts):
        alone = classifier.encode([text])
        assert alone.rows == [together.rows[i]]
        assert alone.lengths.tolist() == [together.lengths[i]]
        assert alone.truncated.tolist() == [together.truncated[i]]
        assert alone.unknown_tokens.tolist() == [together.unknown_tokens[i]]
