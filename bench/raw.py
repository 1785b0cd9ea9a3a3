"""The model alone, in-process: the limits a served model is compared with.

`raw_limit`: texts/s of one process using every core, the best of several batch
sizes, in arrival order and sorted by length. `raw_latency`: the time of one text
alone (batch 1) and of whole 32-text requests, on the very texts the lone-request
scenarios send, with as many torch threads as one server worker has and with all
cores.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any


@dataclass
class RawResult:
    points: dict[str, float] = field(default_factory=dict)  # setting -> texts/s

    @property
    def best_setting(self) -> str:
        return max(self.points, key=self.points.__getitem__)

    @property
    def best_texts_per_s(self) -> float:
        return max(self.points.values())

    @property
    def best_arrival_texts_per_s(self) -> float:
        return max(v for k, v in self.points.items() if "arrival" in k)

    @property
    def best_sorted_texts_per_s(self) -> float:
        """The length-sorted limit: texts sorted by length, then cut into batches."""
        return max(v for k, v in self.points.items() if "sorted" in k)

    def describe(self) -> str:
        return "\n".join(f"  {k}: {v:.0f} texts/s" for k, v in self.points.items())


@dataclass
class RawLatency:
    """Per-call times in ms: each lone text alone, each lone 32-text request's texts."""

    threads: int
    batch1_plain_ms: list[float] = field(default_factory=list)
    batch1_refit_ms: list[float] = field(default_factory=list)
    batch32_plain_ms: list[float] = field(default_factory=list)
    batch32_refit_ms: list[float] = field(default_factory=list)

    @property
    def batch1_p50_ms(self) -> float:
        """The faster of plain padding and refit's `predict`, by median."""
        return min(_median(self.batch1_plain_ms), _median(self.batch1_refit_ms))

    @property
    def batch32_p50_ms(self) -> float:
        return min(_median(self.batch32_plain_ms), _median(self.batch32_refit_ms))

    def describe(self) -> str:
        return (
            f"  {self.threads} thread(s): batch 1 p50 {self.batch1_p50_ms:.1f} ms/text "
            f"(plain {_median(self.batch1_plain_ms):.1f}, refit "
            f"{_median(self.batch1_refit_ms):.1f}); 32 texts p50 {self.batch32_p50_ms:.0f} ms "
            f"(plain {_median(self.batch32_plain_ms):.0f}, refit "
            f"{_median(self.batch32_refit_ms):.0f})"
        )


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load_champion() -> Any:
    """The current BENTOML_HOME's champion as a `TextClassifier`, warmed up."""
    from refit.core.inference import TextClassifier
    from refit.core.registry import Registry
    from refit.service.settings import get_settings

    settings = get_settings()
    version = Registry.from_settings(settings.core).get()
    classifier = TextClassifier.from_folder(
        version.path,
        device=settings.core.device,
        max_length=version.max_length(settings.training.max_length),
        max_batch_tokens=settings.serving.max_batch_tokens,
        trace=settings.serving.forward_pass == "traced",  # as the servers run it
    )
    classifier.warm_up()
    return classifier


def raw_limit(classifier: Any, texts: list[str], sample: int = 768) -> RawResult:
    """The model alone on the same texts: plain padded batches and refit's bucketing."""
    import torch

    # One process using every core: the most the machine does without a server.
    torch.set_num_threads(os.cpu_count() or 1)
    on_gpu = classifier.device.type == "cuda"
    # A GPU goes through 768 texts in a few hundredths of a second: time them all, and
    # the larger batches a GPU wants.
    subset = texts if on_gpu else texts[:sample]
    sizes = (1, 8, 32, 64, 128, 256, 512) if on_gpu else (1, 8, 32, 64, 128)
    result = RawResult()
    for order in ("arrival", "sorted"):
        for size in sizes:
            # One text at a time is slow: time the first 128 texts, in either order.
            items = subset[:128] if size == 1 else subset
            if order == "sorted":
                items = sorted(items, key=len)
            result.points[f"plain padding, {order}, batch {size}"] = _rate(
                partial(_plain, classifier, size=size), items
            )
    # refit's path runs the served forward pass (traced, by default), so the length-sorted
    # limit takes the faster of the two.
    for order in ("arrival", "sorted"):
        items = subset if order == "arrival" else sorted(subset, key=len)
        for size in sizes[2:]:
            result.points[f"refit buckets, {order}, batch {size}"] = _rate(
                partial(_predict, classifier, size=size), items
            )
    return result


def raw_latency(
    classifier: Any, lone: Sequence[str], batches: Sequence[Sequence[str]], threads: int
) -> RawLatency:
    """Times of each text of `lone` alone and of each batch of `batches`, both ways."""
    import torch

    torch.set_num_threads(threads)
    for _ in range(3):  # the thread count changed: warm up again
        classifier.predict(list(lone[:1]))
        if batches:
            classifier.predict(list(batches[0]))
    out = RawLatency(threads)
    for texts, plain, refit in (
        *(([t], out.batch1_plain_ms, out.batch1_refit_ms) for t in lone),
        *((list(b), out.batch32_plain_ms, out.batch32_refit_ms) for b in batches),
    ):
        plain.append(_ms(partial(_plain, classifier, texts, size=len(texts))))
        refit.append(_ms(partial(classifier.predict, texts)))
    return out


def _plain(classifier: Any, texts: list[str], size: int) -> None:
    """Plain padding to the longest of each batch of `size`, as a naive server would."""
    import torch

    for i in range(0, len(texts), size):
        enc = classifier.tokenizer(
            texts[i : i + size],
            truncation=True,
            padding=True,
            max_length=classifier.max_length,
            return_tensors="pt",
        ).to(classifier.device)
        with torch.inference_mode():
            # .cpu() waits for the GPU, as a server must before it answers
            classifier.model(**enc).logits.softmax(-1).cpu()


def _predict(classifier: Any, texts: list[str], size: int) -> None:
    """refit's own path: `predict` (length buckets inside) on batches of `size`."""
    for i in range(0, len(texts), size):
        classifier.predict(texts[i : i + size])


def _rate(run: Callable[[list[str]], object], texts: list[str]) -> float:
    started = time.perf_counter()
    run(texts)
    return len(texts) / (time.perf_counter() - started)


def _ms(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return 1000 * (time.perf_counter() - started)
