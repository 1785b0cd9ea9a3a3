"""Batch-first inference for a fine-tuned sequence classifier.

One implementation serves the HTTP service, `refit evaluate`, the test-split report
and the reference profile at training time, and the retraining gate, so that a model
is judged by exactly the code that serves it.

Throughput on real text is decided by padding: a batch padded to its longest
member wastes most of its compute when lengths vary. `TextClassifier.predict`
therefore tokenises the whole batch in one call, sorts it by token length, and
cuts it into length buckets before any tensor is built.

The steps are public because the service schedules its own forward passes
(`service/scheduling/scheduler.py`): it tokenises each request once when it arrives
(`encode`) and later runs passes over texts of many requests (`run_pass`).
`predict` is those same steps applied to one batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from refit.core.descriptors import EMBEDDING_DIMS
from refit.core.errors import ModelLoadError
from refit.core.forward_pass import PassModule, projection_matrix, trace_checked
from refit.core.load_errors import load_step
from refit.core.quantization import quantize_int8
from refit.core.token_ids import TokenIds

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOutput:
    """Model outputs for a batch, row i belonging to input text i."""

    probs: np.ndarray  # (n, n_labels) float32, rows sum to 1
    n_tokens: np.ndarray  # (n,) int, tokens fed to the model after truncation
    truncated: np.ndarray  # (n,) bool, the text was longer than max_length
    padded_tokens: int = 0  # token positions computed, padding included
    tokenize_seconds: float = 0.0
    compute_seconds: float = 0.0
    unknown_tokens: np.ndarray | None = None  # (n,) int, [UNK] tokens per text
    # (n, EMBEDDING_DIMS) float16: the encoder's mean-pooled last layer, projected
    embeddings: np.ndarray | None = None

    @property
    def label_ids(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)


@dataclass(frozen=True)
class Encoded:
    """Texts tokenised once, ready for any number of later forward passes."""

    rows: list[list[int]]  # token ids fed to the model, at most max_length each
    lengths: np.ndarray  # (n,) int64, len(rows[i])
    truncated: np.ndarray  # (n,) bool, the text was longer than max_length
    unknown_tokens: np.ndarray  # (n,) int64, [UNK] tokens per text


@dataclass(frozen=True)
class PassOutput:
    """What one forward pass returns, row i belonging to the pass's row i."""

    probs: np.ndarray  # (k, n_labels) float32
    embeddings: np.ndarray | None  # (k, EMBEDDING_DIMS) float16, when captured


def resolve_device(requested: str) -> torch.device:
    """Map the `device` setting to a torch device; `auto` prefers CUDA."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("REFIT_DEVICE=cuda but no CUDA device is visible to torch")
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def plan_buckets(
    lengths: np.ndarray,
    *,
    max_batch_tokens: int,
    overhead_tokens: int,
    max_items: int | None = None,
) -> list[np.ndarray]:
    """Split item indices into forward passes of similar length.

    Items are taken shortest first. A new bucket starts when the next item would
    push the padded size past `max_batch_tokens`, or when the extra padding it
    forces on the items already in the bucket costs more than one more forward
    pass (`overhead_tokens`, the fixed cost of a forward expressed in tokens), or
    when the bucket already holds `max_items` items.
    """
    cap = max_items or len(lengths)
    order = np.argsort(lengths, kind="stable")
    buckets: list[np.ndarray] = []
    start = 0
    width = 0
    for pos, idx in enumerate(order):
        length = int(lengths[idx])
        count = pos - start
        if count and (
            count >= cap
            or (count + 1) * max(width, length) > max_batch_tokens
            or count * (length - width) > overhead_tokens
        ):
            buckets.append(order[start:pos])
            start, width = pos, 0
        width = max(width, length)
    if start < len(order):
        buckets.append(order[start:])
    return buckets


class TextClassifier:
    """A tokenizer and a sequence-classification model, ready to predict."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int,
        device: torch.device,
        max_batch_tokens: int = 16384,
        overhead_tokens: int | None = None,
        capture_embeddings: bool = False,
    ) -> None:
        id2label = {int(k): str(v) for k, v in (model.config.id2label or {}).items()}
        self.labels: tuple[str, ...] = tuple(str(id2label[i]) for i in range(len(id2label)))
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.device = device
        self.max_batch_tokens = max_batch_tokens
        # A forward pass on a GPU costs about the same for 10 or 10,000 tokens,
        # so there padding is cheap and extra passes are not; on a CPU it is the reverse.
        self.overhead_tokens = overhead_tokens or (8192 if device.type == "cuda" else 48)
        self._pad_id = tokenizer.pad_token_id or 0
        self._unk_id = tokenizer.unk_token_id
        self._token_ids = TokenIds(tokenizer, max_length + 1)
        projection = None
        if capture_embeddings:
            hidden = int(model.config.hidden_size)
            projection = torch.from_numpy(projection_matrix(hidden)).to(device)
        self._module = PassModule(self.model, projection)
        self._forward: torch.nn.Module | torch.jit.ScriptModule = self._module
        self.traced = False

    def trace(self) -> None:
        """Run forward passes as one TorchScript call (`core.forward_pass`). Where the
        trace fails or differs from the eager pass, keep the eager pass and say why."""
        try:
            self._forward = trace_checked(
                self._module, pad_id=self._pad_id, max_length=self.max_length
            )
            self.traced = True
        except Exception as exc:  # any failure leaves the eager pass serving
            logger.warning("forward passes stay eager: the TorchScript trace failed: %r", exc)

    @classmethod
    def from_folder(
        cls,
        folder: Path | str,
        *,
        device: str = "auto",
        max_length: int = 128,
        max_batch_tokens: int = 16384,
        capture_embeddings: bool = False,
        cpu_backend: str = "fp32",
        trace: bool = False,
    ) -> TextClassifier:
        """Load a Hugging Face model folder (safetensors weights only).

        `cpu_backend="int8"` quantizes the linear layers' weights to int8 when serving
        on a CPU (dynamic quantization: activations stay float). `trace`: see `trace()`.
        """
        torch_device = resolve_device(device)
        dtype = torch.bfloat16 if torch_device.type == "cuda" else torch.float32
        with load_step("tokenizer", folder):  # any failure: a ModelLoadError naming no path
            tokenizer = AutoTokenizer.from_pretrained(folder)
        with load_step("weights", folder):
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, use_safetensors=True, dtype=dtype
            )
        if cpu_backend == "int8" and torch_device.type == "cpu":
            model = quantize_int8(model)
        classifier = cls(
            model.to(torch_device),
            tokenizer,
            max_length=max_length,
            device=torch_device,
            max_batch_tokens=max_batch_tokens,
            capture_embeddings=capture_embeddings,
        )
        if trace:
            classifier.trace()
        return classifier

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Tokenise `texts` in one tokenizer call, ready for `run_pass`.

        The tokenizer keeps one token past `max_length` so that truncation can be
        detected; a row that long is cut back to `max_length`, keeping its final
        [SEP], which is what the tokenizer's own truncation would give.
        """
        ids = self._token_ids(texts)
        raw = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        keep = self.max_length
        rows = [row if len(row) <= keep else [*row[: keep - 1], row[-1]] for row in ids]
        return Encoded(
            rows=rows,
            lengths=np.minimum(raw, keep),
            truncated=raw > keep,
            unknown_tokens=self._count_unknown(ids),
        )

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        """One forward pass over encoded rows, padded to the longest; row i is `rows[i]`."""
        width = int(lengths.max())
        input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        for i, (row, length) in enumerate(zip(rows, lengths, strict=True)):
            input_ids[i, :length] = row
        mask = (np.arange(width) < lengths[:, None]).astype(np.int64)
        with torch.inference_mode():
            out = self._forward(
                torch.from_numpy(input_ids).to(self.device), torch.from_numpy(mask).to(self.device)
            )
            probs = out[0].cpu().numpy()
            pooled = out[1].to(torch.float16).cpu().numpy() if len(out) > 1 else None
        return PassOutput(probs, pooled)

    def predict(self, texts: Sequence[str]) -> BatchOutput:
        """Class probabilities for `texts`, in input order."""
        started = time.perf_counter()
        encoded = self.encode(texts)
        tokenized = time.perf_counter()
        lengths = encoded.lengths
        probs = np.empty((len(lengths), len(self.labels)), dtype=np.float32)
        embeddings = None
        if self._module.pooled:
            embeddings = np.empty((len(lengths), EMBEDDING_DIMS), dtype=np.float16)
        buckets = plan_buckets(
            lengths, max_batch_tokens=self.max_batch_tokens, overhead_tokens=self.overhead_tokens
        )
        for bucket in buckets:
            out = self.run_pass([encoded.rows[i] for i in bucket], lengths[bucket])
            probs[bucket] = out.probs
            if embeddings is not None:
                embeddings[bucket] = out.embeddings
        return BatchOutput(
            probs=probs,
            n_tokens=lengths,
            truncated=encoded.truncated,
            padded_tokens=sum(len(b) * int(lengths[b].max()) for b in buckets),
            tokenize_seconds=tokenized - started,
            compute_seconds=time.perf_counter() - tokenized,
            unknown_tokens=encoded.unknown_tokens,
            embeddings=embeddings,
        )

    def _count_unknown(self, ids: list[list[int]]) -> np.ndarray:
        unk = self._unk_id
        if unk is None:
            return np.zeros(len(ids), dtype=np.int64)
        return np.fromiter((row.count(unk) for row in ids), dtype=np.int64, count=len(ids))

    def warm_up(self) -> None:
        """Run a few representative shapes so the first real request pays no setup cost."""
        for n, words in ((1, 4), (8, 24), (32, 60)):
            self.predict(["warm up " * (words // 2)] * n)
