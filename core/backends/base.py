"""The seam every inference engine implements, and the code they all share.

A backend is one engine running one model version: torch (eager, traced or int8,
on a CPU or a GPU; `torch_backend.py`) and ONNX Runtime (fp32 or int8;
`onnx_backend.py`) are peers behind it. What a backend owns is one forward pass
over a padded batch (`run_pass`), plus what serving would otherwise reach into the
engine for: the device it runs on, GPU figures for metrics, memory to give back
after a hot-swap. Everything else is shared, so that every backend is judged by
the same code: tokenising (`encoding.TextEncoder`), cutting a batch into passes of
similar length (`plan_buckets`), and `predict`, which is those steps over one batch.

The service's scheduler needs only `PassModel`'s members: it tokenises a round's
texts in one call, runs passes over texts of many requests, and cuts those passes
by what one costs (`pass_cost`, measured at warm-up).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.outputs import BatchOutput, Encoded, PassOutput
from refit.core.backends.pass_cost import PassCost, measure_pass_cost
from refit.core.descriptors import EMBEDDING_DIMS

# Until `warm_up` measures it (`pass_cost`): on a CPU a MiniLM pass costs about what
# 48 more padded tokens do; on a GPU a pass costs about the same for 10 or 10,000
# tokens, so there padding is cheap and extra passes are not (`plan_buckets`).
CPU_OVERHEAD_TOKENS = 48
GPU_OVERHEAD_TOKENS = 8192


class PassModel(Protocol):
    """What the service's scheduler needs of a served model."""

    @property
    def overhead_tokens(self) -> int: ...
    @property
    def pass_cost(self) -> PassCost | None: ...
    def encode(self, texts: Sequence[str]) -> Encoded: ...
    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput: ...


@dataclass(frozen=True)
class DeviceStats:
    """A GPU's figures for the metrics: which device, bytes held, share of time busy."""

    index: int
    memory_bytes: int
    utilization: float | None  # 0..1; None where the driver will not say


class Backend(ABC):
    """One model version on one engine: tokenise, run passes, predict."""

    def __init__(
        self,
        encoder: TextEncoder,
        labels: Sequence[str],
        *,
        name: str,
        device: str,
        max_batch_tokens: int = 16384,
        captures_embeddings: bool = False,
    ) -> None:
        self.encoder = encoder
        self.labels: tuple[str, ...] = tuple(labels)
        self.name = name  # e.g. "torch-traced", "onnx-int8": said by /readyz, metrics, logs
        self.device = device  # "cpu" or "cuda"
        self.max_batch_tokens = max_batch_tokens
        self.captures_embeddings = captures_embeddings
        self._prior_overhead = GPU_OVERHEAD_TOKENS if device == "cuda" else CPU_OVERHEAD_TOKENS
        self.pass_cost: PassCost | None = None  # measured by warm_up
        self.reason = ""  # why this backend serves, as the loader chose it

    @property
    def overhead_tokens(self) -> int:
        """A pass's fixed cost in padded tokens: from `pass_cost` once warmed up."""
        if self.pass_cost is None:
            return self._prior_overhead
        return self.pass_cost.overhead_tokens(cap=self.max_batch_tokens)

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Token ids of `texts`, ready for `run_pass` (`encoding.TextEncoder.encode`)."""
        return self.encoder.encode(texts)

    @abstractmethod
    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        """One forward pass over encoded rows, padded to the longest; row i is `rows[i]`."""

    def predict(self, texts: Sequence[str]) -> BatchOutput:
        """Class probabilities for `texts`, in input order."""
        return predict(self, texts)

    def warm_up(self) -> None:
        """Run a few representative shapes so the first real request pays no setup cost."""
        for n, words in ((1, 4), (8, 24), (32, 60)):
            self.predict(["warm up " * (words // 2)] * n)
        self.pass_cost = measure_pass_cost(self)

    def device_stats(self) -> DeviceStats | None:
        """The GPU's figures, for a backend that runs on one; None on a CPU."""
        return None

    def memory_releaser(self) -> Callable[[], None]:
        """A call that gives back the memory the engine keeps cached for models no longer
        in use (GPU blocks torch holds on to). It holds no reference to this model, so a
        hot-swap can drop the model first and then call it; passes still running on the
        model keep what they use."""
        return _nothing


def _nothing() -> None:
    """Engines that cache nothing past their models' lifetime."""


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


def predict(model: Backend, texts: Sequence[str]) -> BatchOutput:
    """`texts` tokenised in one call, sorted by length, cut into passes, run: the
    probabilities (and embeddings, where the backend captures them) in input order."""
    started = time.perf_counter()
    encoded = model.encode(texts)
    tokenized = time.perf_counter()
    lengths = encoded.lengths
    probs = np.empty((len(lengths), len(model.labels)), dtype=np.float32)
    embeddings = None
    if model.captures_embeddings:
        embeddings = np.empty((len(lengths), EMBEDDING_DIMS), dtype=np.float16)
    buckets = plan_buckets(
        lengths, max_batch_tokens=model.max_batch_tokens, overhead_tokens=model.overhead_tokens
    )
    rechecked = 0
    for bucket in buckets:
        out = model.run_pass([encoded.rows[i] for i in bucket], lengths[bucket])
        probs[bucket] = out.probs
        rechecked += out.rechecked
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
        rechecked=rechecked,
    )
