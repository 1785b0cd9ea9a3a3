"""A version's forward pass as an ONNX graph: the pass the torch backend runs, exported.

The graph is `core.backends.torch_pass.PassModule` with the embedding projection,
exported by torch's TorchScript-based exporter (`dynamo=False`: one self-contained
file, no onnxscript) at opset 17, with the batch and sequence axes dynamic. Its
outputs are the class probabilities and the pooled embedding's projection, the
same two as the torch backend's, so that a version served on ONNX logs embeddings
its reference profile (made with torch at registration) can be compared with.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Final

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from refit.core.backends.onnx_backend import INPUTS, OUTPUTS
from refit.core.backends.torch_pass import PassModule, projection_matrix

OPSET: Final = 17


def load_for_export(folder: Path) -> PreTrainedModel:
    """The version's weights in float32 on the CPU, as ONNX Runtime's CPU provider runs them."""
    model = AutoModelForSequenceClassification.from_pretrained(
        folder, use_safetensors=True, dtype=torch.float32
    )
    return model.eval()


def export_onnx(model: PreTrainedModel, path: Path) -> None:
    """Write `model`'s pass (probabilities and projected pooled embedding) to `path`.

    Written under a temporary name and renamed, so a reader never sees half a file.
    """
    hidden = int(model.config.hidden_size)
    module = PassModule(model, torch.from_numpy(projection_matrix(hidden))).eval()
    # Two texts of different lengths, so that the trace sees the mask at work; ids any
    # vocabulary has (the values do not matter, the shapes and the mask do).
    input_ids = torch.tensor([[1, 5, 6, 2], [1, 6, 2, 0]], dtype=torch.int64)
    mask = (input_ids != 0).to(torch.int64)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUTS}
    axes.update({name: {0: "batch"} for name in OUTPUTS})
    partial = path.with_name(path.name + ".partial")
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer's notes on Python branches in transformers' code (the graph is
        # checked against torch on the test split afterwards), and deprecations.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (input_ids, mask),
            str(partial),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=axes,
        )
    os.replace(partial, path)
