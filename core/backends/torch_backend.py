"""The torch backend: a Hugging Face model run by PyTorch, on a CPU or a GPU.

Eager (PyTorch op by op from Python), traced (one TorchScript call per pass, which
lets go of the GIL once: `torch_pass.py`), and int8 on a CPU (dynamic quantization
of the attention projections: `torch_int8.py`). On a GPU the weights are bf16.
This module and its `torch_*` siblings are the only ones outside `training/` that
import torch (tests/unit/test_layout.py checks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from refit.core.backends.base import Backend, DeviceStats
from refit.core.backends.encoding import TextEncoder, padded
from refit.core.backends.outputs import PassOutput
from refit.core.backends.torch_int8 import quantize_int8
from refit.core.backends.torch_pass import PassModule, projection_matrix, trace_checked
from refit.core.errors import ModelLoadError
from refit.core.load_errors import load_step

logger = logging.getLogger(__name__)


def cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def resolve_device(requested: str) -> torch.device:
    """Map the `device` setting to a torch device; `auto` prefers CUDA."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("REFIT_DEVICE=cuda but no CUDA device is visible to torch")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def label_names(model: PreTrainedModel) -> tuple[str, ...]:
    id2label = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
    return tuple(id2label[i] for i in range(len(id2label)))


class TorchBackend(Backend):
    """A sequence-classification model and its tokenizer, run by PyTorch."""

    def __init__(
        self,
        model: PreTrainedModel,
        encoder: TextEncoder,
        *,
        device: torch.device,
        max_batch_tokens: int = 16384,
        capture_embeddings: bool = False,
        int8: bool = False,
    ) -> None:
        self.int8 = int8
        super().__init__(
            encoder,
            label_names(model),
            name="torch-int8" if int8 else "torch-eager",
            device=device.type,
            max_batch_tokens=max_batch_tokens,
            captures_embeddings=capture_embeddings,
        )
        self.model = model.eval()
        self.torch_device = device
        projection = None
        if capture_embeddings:
            hidden = int(model.config.hidden_size)
            projection = torch.from_numpy(projection_matrix(hidden)).to(device)
        self._module = PassModule(self.model, projection)
        self._forward: torch.nn.Module | torch.jit.ScriptModule = self._module
        self.traced = False

    @classmethod
    def from_folder(
        cls,
        folder: Path | str,
        *,
        device: str = "auto",
        max_length: int = 128,
        max_batch_tokens: int = 16384,
        capture_embeddings: bool = False,
        int8: bool = False,
        trace: bool = False,
        threads: int | None = None,
    ) -> TorchBackend:
        """Load a Hugging Face model folder (safetensors weights only).

        `int8` quantizes the attention projections' weights when serving on a CPU
        (`torch_int8.py`); `trace`: see `trace()`; `threads`: torch's intra-op threads,
        for the whole process.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        torch_device = resolve_device(device)
        dtype = torch.bfloat16 if torch_device.type == "cuda" else torch.float32
        encoder = TextEncoder.from_folder(folder, max_length)
        with load_step("weights", folder):
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, use_safetensors=True, dtype=dtype
            )
        int8 = int8 and torch_device.type == "cpu"
        if int8:
            model = quantize_int8(model)
        backend = cls(
            model.to(torch_device),
            encoder,
            device=torch_device,
            max_batch_tokens=max_batch_tokens,
            capture_embeddings=capture_embeddings,
            int8=int8,
        )
        if trace:
            backend.trace()
        return backend

    def trace(self) -> None:
        """Run forward passes as one TorchScript call (`torch_pass.py`). Where the trace
        fails or differs from the eager pass, keep the eager pass and say why."""
        try:
            self._forward = trace_checked(
                self._module, pad_id=self.encoder.pad_id, max_length=self.max_length
            )
        except Exception as exc:  # any failure leaves the eager pass serving
            logger.warning("forward passes stay eager: the TorchScript trace failed: %r", exc)
            return
        self.traced = True
        if not self.int8:
            self.name = "torch-traced"

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        input_ids, mask = padded(rows, lengths, self.encoder.pad_id)
        device = self.torch_device
        with torch.inference_mode():
            out = self._forward(
                torch.from_numpy(input_ids).to(device), torch.from_numpy(mask).to(device)
            )
            probs = out[0].cpu().numpy()
            pooled = out[1].to(torch.float16).cpu().numpy() if len(out) > 1 else None
        return PassOutput(probs, pooled)

    def device_stats(self) -> DeviceStats | None:
        if self.device != "cuda":
            return None
        index = torch.cuda.current_device()
        try:
            utilization: float | None = torch.cuda.utilization(index) / 100
        except Exception:  # NVML missing or not permitted: memory is still reported
            logger.debug("GPU utilisation unavailable", exc_info=True)
            utilization = None
        return DeviceStats(index, int(torch.cuda.memory_allocated(index)), utilization)

    def memory_releaser(self) -> Callable[[], None]:
        # Cached blocks nothing uses any more go back to the driver; blocks a running
        # pass holds stay until it ends.
        return torch.cuda.empty_cache if self.device == "cuda" else super().memory_releaser()
