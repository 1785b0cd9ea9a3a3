"""The torch backend's forward pass: padded token ids in, class probabilities out,
and with them the pooled embedding that drift checks log.

The pass is one `torch.nn.Module`, run either eagerly or as a TorchScript trace; the
same module is what registration exports to ONNX (`training/onnx_export.py`), so
every backend computes the same two outputs.
Serving traces it. A worker runs its passes on a model thread while its event
loop answers HTTP on another thread of the same process. Eagerly, a pass is
hundreds of PyTorch calls made from Python: each call lets go of Python's GIL and
has to win it back, and while the event loop is busy every such wait can last the
interpreter's switch interval (5 ms). A trace runs the whole model in one call into
C++ that lets go of the GIL once. `python bench/gil_bench.py` on this project's
2-core machine, one torch thread: a MiniLM pass over 8 texts took 71 ms alone; beside
a thread spinning in Python, 698 ms eagerly and 90 ms traced (what is left is the
pass's own Python around the call). The tiny model's 4-text pass: 1.0 ms alone, 303
ms eagerly and 17 ms traced beside the spinning thread.

`torch.jit.trace` is deprecated in torch 2.13 in favour of `torch.export` and
`torch.compile`. Neither offers that single call on a CPU without a C++ toolchain
at load time: an exported program and compile's default output still call each
op or kernel from Python. Tracing records the ops of one example, so a trace is
used only after it has matched the eager module on the shapes and padding a
server sees (`trace_checked`); where it fails or differs, the eager module serves.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from transformers import PreTrainedModel

from refit.core.descriptors import EMBEDDING_DIMS

# (texts, tokens, padded rows) the trace must match the eager module on.
CHECK_SHAPES = ((1, 3, 0), (3, 9, 2), (5, 40, 3), (2, 128, 1))


def projection_matrix(hidden_size: int, dims: int = EMBEDDING_DIMS) -> np.ndarray:
    """The same (hidden_size, dims) projection for a given width, in every process.

    A fixed Gaussian random projection to EMBEDDING_DIMS (32, stored with every logged
    prediction) preserves distances well enough for drift detection
    (Johnson-Lindenstrauss) and needs no fitting.
    """
    rng = np.random.default_rng(20261127)
    return (rng.standard_normal((hidden_size, dims)) / np.sqrt(dims)).astype(np.float32)


class PassModule(torch.nn.Module):
    """`(input_ids, attention_mask) -> (probs,)`, or `(probs, pooled)` with a projection:
    float32 probabilities per label, and the last layer's mean over real tokens,
    projected to `EMBEDDING_DIMS`."""

    def __init__(self, model: PreTrainedModel, projection: torch.Tensor | None) -> None:
        super().__init__()
        self.model = model
        self.pooled = projection is not None
        self.register_buffer("projection", projection if projection is not None else None)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=self.pooled
        )
        probs = torch.softmax(out.logits.float(), dim=-1)
        if not self.pooled:
            return (probs,)
        hidden = out.hidden_states[-1]
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        return probs, pooled.float() @ self.projection


def trace_checked(module: PassModule, *, pad_id: int, max_length: int) -> torch.jit.ScriptModule:
    """`module` traced, once it has given the eager module's outputs on `CHECK_SHAPES`.

    Raises ValueError naming the first shape where it differs; tracing's own errors
    pass through.
    """
    device = next(module.parameters()).device
    vocab = int(module.model.config.vocab_size)
    low_precision = next(module.parameters()).dtype != torch.float32
    rtol, atol = (5e-2, 5e-2) if low_precision else (1e-4, 1e-5)
    generator = torch.Generator().manual_seed(20261201)

    def example(texts: int, tokens: int, padded: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = max(2, min(tokens, max_length))
        ids = torch.randint(0, vocab, (texts, tokens), generator=generator)
        mask = torch.ones(texts, tokens, dtype=torch.int64)
        for row in range(texts - padded, texts):  # the last rows end early
            mask[row, 1 + row % (tokens - 1) :] = 0
        ids = ids.masked_fill(mask == 0, pad_id)
        return ids.to(device), mask.to(device)

    with torch.inference_mode(), warnings.catch_warnings():
        # The deprecation (see above), transformers' notes on its own deprecated helpers,
        # and the tracer's on Python branches, which the check below settles.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example(2, 8, 1), check_trace=False, strict=False)
        for shape in CHECK_SHAPES:
            inputs = example(*shape)
            for want, got in zip(module(*inputs), traced(*inputs), strict=True):
                if not torch.allclose(want, got, rtol=rtol, atol=atol):
                    worst = float((want - got).abs().max())
                    raise ValueError(f"the trace differs by {worst:.3g} on shape {shape}")
    return traced
