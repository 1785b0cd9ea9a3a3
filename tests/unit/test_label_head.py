"""Growing a trained head for new labels keeps what it knew about the old ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_versions import write_tiny_version
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from refit.training.finetune import _load_base
from refit.training.label_head import can_carry_over, regrow_head


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture
def classifier(tiny_base_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "champion"
    folder.mkdir()
    write_tiny_version(tiny_base_model, ["billing", "shipping"], seed=3)(folder)
    return folder


def test_old_label_rows_are_kept_in_the_new_order(classifier: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(classifier)
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    before = _logits(model, ids)
    regrow_head(model, ["account", "billing", "refund", "shipping"])
    after = _logits(model, ids)
    assert after.shape == (2, 4)
    assert torch.allclose(after[:, 1], before[:, 0], atol=1e-6)  # billing
    assert torch.allclose(after[:, 3], before[:, 1], atol=1e-6)  # shipping
    assert model.config.id2label == {0: "account", 1: "billing", 2: "refund", 3: "shipping"}
    assert model.config.label2id["refund"] == 2
    assert model.num_labels == 4


def test_new_rows_start_small_and_differ(classifier: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(classifier)
    regrow_head(model, ["billing", "new_a", "new_b", "shipping"])
    layer = model.classifier
    weight = layer.weight.detach()
    assert not torch.equal(weight[1], weight[2])
    assert float(weight[1:3].std()) < 0.1
    assert torch.all(layer.bias.detach()[1:3] == 0)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (["a", "b"], ["a", "b", "c"], True),
        (["b", "c"], ["a", "b", "c"], True),
        (["a", "b"], ["a", "b"], False),  # same head: nothing to do
        (["a", "b"], ["a", "c"], False),  # a label dropped: no row to keep for it
        ([], ["a"], False),
    ],
)
def test_can_carry_over(old: list[str], new: list[str], expected: bool) -> None:
    assert can_carry_over(old, new) is expected


def test_regrow_refuses_a_label_set_that_drops_one(classifier: Path) -> None:
    model = AutoModelForSequenceClassification.from_pretrained(classifier)
    with pytest.raises(ValueError, match="cannot carry"):
        regrow_head(model, ["billing", "refund"])


def test_fine_tune_start_keeps_the_champion_head(classifier: Path) -> None:
    """The path a challenger takes: loaded from the champion with a label more."""
    champion = AutoModelForSequenceClassification.from_pretrained(classifier)
    tokenizer = AutoTokenizer.from_pretrained(classifier)
    ids = torch.tensor(
        tokenizer(["refund my order", "where is my parcel"], padding=True)["input_ids"]
    )
    model, _, carried = _load_base(str(classifier), ["billing", "returns", "shipping"])
    assert carried == ["billing", "shipping"]
    before, after = _logits(champion, ids), _logits(model, ids)
    assert torch.allclose(after[:, [0, 2]], before, atol=1e-6)


def test_a_bare_encoder_gets_a_fresh_head(tiny_base_model: Path) -> None:
    model, _, carried = _load_base(str(tiny_base_model), ["x", "y", "z"])
    assert carried == []
    assert model.config.id2label == {0: "x", 1: "y", 2: "z"}
