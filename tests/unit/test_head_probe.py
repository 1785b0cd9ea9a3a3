"""A challenger's new head rows are fitted on the frozen model before its epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_versions import write_tiny_version
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from refit.training.head_probe import PROBE_ROWS_PER_LABEL, fit_new_rows, probe_new_rows
from refit.training.label_head import output_layer, regrow_head
from refit.training.length_batches import Item, collate_padded


def _clusters(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of three labels around their own centres, 40 rows each."""
    centres = torch.randn(3, 16, generator=generator) * 3
    targets = torch.arange(3).repeat_interleave(40)
    return centres[targets] + torch.randn(120, 16, generator=generator), targets


def test_a_new_row_learns_its_label_while_known_rows_stay() -> None:
    generator = torch.Generator().manual_seed(0)
    features, targets = _clusters(generator)
    # Known rows 0 and 2 point at their own centres, as a trained head's would.
    means = torch.stack([features[targets == k].mean(dim=0) for k in range(3)])
    weight = means / means.norm(dim=1, keepdim=True)
    weight[1] = torch.randn(16, generator=generator) * 0.02  # new: random, as regrown
    bias = torch.zeros(3)
    rows = torch.tensor([1])

    new_w, new_b = fit_new_rows(features, targets, weight, bias, rows, seed=0)

    fitted = weight.clone()
    fitted[1] = new_w[0]
    predicted = (features @ fitted.T + torch.cat([bias[:1], new_b, bias[2:]])).argmax(dim=1)
    before = (features @ weight.T).argmax(dim=1)
    assert (before[targets == 1] == 1).float().mean() < 0.5
    assert (predicted[targets == 1] == 1).float().mean() > 0.9
    assert (predicted[targets != 1] == targets[targets != 1]).float().mean() > 0.9
    assert float(new_w.norm()) <= 1.0 + 1e-5  # no longer than the known rows (unit here)


@pytest.fixture
def grown(tiny_base_model: Path, tmp_path: Path) -> PreTrainedModel:
    folder = tmp_path / "champion"
    folder.mkdir()
    write_tiny_version(tiny_base_model, ["billing", "shipping"], seed=3)(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    regrow_head(model, ["billing", "refund", "shipping"])  # "refund" (row 1) is new
    return model


def _items() -> list[Item]:
    generator = torch.Generator().manual_seed(0)
    items: list[Item] = []
    for label, (low, high) in enumerate([(1000, 1400), (5000, 5400), (9000, 9400)]):
        for _ in range(40):
            body = torch.randint(low, high, (4 + label * 3,), generator=generator).tolist()
            items.append(([101, *body, 102], label))
    return items


def test_probing_a_model_writes_only_the_new_rows(grown: PreTrainedModel) -> None:
    _, _, layer = output_layer(grown)
    known_before = layer.weight[[0, 2]].detach().clone()
    known_bias = layer.bias[[0, 2]].detach().clone()
    new_before = layer.weight[1].detach().clone()
    grown.train()

    result = probe_new_rows(grown, _items(), [1], collate_padded(0), seed=0)

    assert (result.labels, result.rows) == (1, 3 * PROBE_ROWS_PER_LABEL)
    assert torch.equal(layer.weight[[0, 2]], known_before)
    assert torch.equal(layer.bias[[0, 2]], known_bias)
    assert not torch.equal(layer.weight[1], new_before)
    assert float(layer.weight[1].norm()) <= float(known_before.norm(dim=1).mean()) * (1 + 1e-5)
    assert grown.training  # its mode is restored: dropout was off only for the features


def test_no_new_rows_is_refused(grown: PreTrainedModel) -> None:
    with pytest.raises(ValueError, match="no new head rows"):
        probe_new_rows(grown, _items(), [], collate_padded(0), seed=0)
