"""CUDA paths: bf16 inference and training. Skipped, and reported, without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.torch_backend import TorchBackend, resolve_device
from refit.training.finetune import TrainingConfig, fine_tune
from refit.training.settings import TrainingSettings

pytestmark = pytest.mark.gpu

TEXTS = ["refund my money", "my parcel is late " * 10, "cannot log in", "hi"]


def test_auto_device_is_cuda_when_present() -> None:
    assert resolve_device("auto").type == "cuda"


def test_bf16_gpu_predictions_agree_with_fp32_cpu(tiny_base_model: Path) -> None:
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=3)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    cpu = TorchBackend(model, TextEncoder(tokenizer, 64), device=torch.device("cpu"))
    expected = cpu.predict(TEXTS).probs
    gpu_model = AutoModelForSequenceClassification.from_pretrained(
        tiny_base_model, num_labels=3, dtype=torch.bfloat16
    )
    gpu_model.load_state_dict(model.state_dict())
    gpu = TorchBackend(
        gpu_model.to("cuda"), TextEncoder(tokenizer, 64), device=torch.device("cuda")
    )
    np.testing.assert_allclose(gpu.predict(TEXTS).probs, expected, atol=2e-2)


def test_training_runs_on_cuda_with_bf16(tiny_base_model: Path) -> None:
    config = TrainingConfig.from_settings(
        TrainingSettings(epochs=1, learning_rate=1e-3, batch_size=8, max_length=32),
        device="cuda",
    )
    result = fine_tune(
        TEXTS * 8,
        ["a", "b", "a", "b"] * 8,
        TEXTS,
        ["a", "b", "a", "b"],
        base_model=str(tiny_base_model),
        config=config,
    )
    assert result.device.startswith("cuda")
