"""The model alone, in-process: the limits a served model is compared with, per backend.

    python bench/raw.py                      # every backend of the champion, all cores
    python bench/raw.py --threads 2,1 --texts 512 --rounds 3 --no-record

Run alone, it measures each inference backend (`core.backends`) of the current
BENTOML_HOME's champion as a contender: texts/s one text at a time (batch 1) and in
length-sorted batches of 32, each as a ratio to torch traced measured in the same
run (every backend timed in turn, `--rounds` times, best kept), and each backend's
label agreement with torch traced (and its macro-F1 difference, where the version
has a labelled test split). The texts are the version's test split when it has one,
else generated ones. A champion without ONNX files is exported first (`refit models
export`). Appends the table to bench/RESULTS.md unless --no-record.

For serve_bench: `raw_limit`: texts/s of one process using every core, the best of
several batch sizes, in arrival order and sorted by length. `raw_latency`: the time
of one text alone (batch 1) and of whole 32-text requests, on the very texts the
lone-request scenarios send, with as many threads as one server worker has and with
all cores. Both run the backend REFIT_BACKEND picks, as the servers do.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from record import publish


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


def load_champion(threads: int | None = None, backend: str | None = None) -> Any:
    """The current BENTOML_HOME's champion on `backend` (default: what REFIT_BACKEND picks,
    as the servers run it), with `threads` intra-op threads, warmed up."""
    from refit.core.backends.loading import BackendOptions
    from refit.core.registry import Registry
    from refit.core.version_check import load_checked
    from refit.service.settings import get_settings

    settings = get_settings()
    version = Registry.from_settings(settings.core).get()
    options = BackendOptions(
        backend=backend or settings.serving.backend,
        device=settings.core.device,
        max_length=version.max_length(settings.training.max_length),
        max_batch_tokens=settings.serving.max_batch_tokens,
        trace=settings.serving.forward_pass == "traced",  # as the servers run it
        threads=threads,
    )
    classifier = load_checked(version.path, version.tag, options)
    classifier.warm_up()
    return classifier


def raw_limit(classifier: Any, texts: list[str], sample: int = 768) -> RawResult:
    """The model alone on the same texts: plain padded batches and refit's bucketing.
    `classifier` should run with every core (`load_champion(os.cpu_count())`): the most
    the machine does without a server."""
    on_gpu = classifier.device == "cuda"
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
    """Times of each text of `lone` alone and of each batch of `batches`, both ways;
    `classifier` was loaded with `threads` threads."""
    for _ in range(3):  # warm up the shapes timed
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
    """Plain padding to the longest of each batch of `size`, as a naive server would:
    one forward pass per batch, whatever the lengths in it."""
    for i in range(0, len(texts), size):
        encoded = classifier.encode(texts[i : i + size])
        # the pass returns numpy arrays: a GPU is waited for, as a server must before it answers
        classifier.run_pass(encoded.rows, encoded.lengths)


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


# --- the backends as contenders (`python bench/raw.py`) ------------------------------
# Each backend as REFIT_BACKEND and REFIT_FORWARD_PASS would load it.
BACKENDS = {
    "torch-traced": ("torch", True),
    "torch-eager": ("torch", False),
    "torch-int8": ("torch-int8", True),
    "onnx-fp32": ("onnx", False),
    "onnx-int8": ("onnx-int8", False),
}
REFERENCE = "torch-traced"


@dataclass
class BackendPoint:
    """One backend's figures in one run; rates are texts/s, best of the rounds."""

    name: str
    threads: int
    batch1: list[float] = field(default_factory=list)
    batch32: list[float] = field(default_factory=list)
    agreement: float = float("nan")  # labels equal to torch traced's
    macro_f1_diff: float | None = None  # against torch traced's, on the test split
    error: str = ""


def _held_texts(version: Any, n: int) -> tuple[list[str], list[str] | None, str]:
    """The version's test split when it has one (with labels), else generated texts."""
    from refit import datagen
    from refit.training.snapshot import SNAPSHOT_DIR, read_snapshot

    if (version.path / SNAPSHOT_DIR).is_dir():
        test = read_snapshot(version.path).test.head(n)
        return test["text"].tolist(), test["label"].tolist(), f"test split, {len(test)} texts"
    texts = datagen.generate(n, seed=20261127)["text"].tolist()
    return texts, None, f"{n} generated texts (no labelled test split)"


def _load(version: Any, name: str, threads: int, max_length: int) -> Any:
    from refit.core.backends.loading import BackendOptions
    from refit.core.version_check import load_checked

    backend, trace = BACKENDS[name]
    options = BackendOptions(backend, "cpu", max_length=max_length, trace=trace, threads=threads)
    model = load_checked(version.path, version.tag, options)
    if model.name != name:  # the loader fell back to torch
        raise RuntimeError(f"{name} did not load: {model.reason}")
    model.warm_up()
    return model


def _sorted_run(model: Any, texts: list[str]) -> tuple[Any, float]:
    """Length-sorted batches of 32: (label ids in input order, texts/s)."""
    import numpy as np

    order = np.argsort(model.encode(texts).lengths, kind="stable")
    labels = np.empty(len(texts), dtype=np.int64)
    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        rows = order[i : i + 32]
        labels[rows] = model.predict([texts[j] for j in rows]).label_ids
    return labels, len(texts) / (time.perf_counter() - started)


def _batch1(model: Any, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        model.predict([text])
    return len(texts) / (time.perf_counter() - started)


def backend_points(
    names: Sequence[str], texts: list[str], truth: list[str] | None, threads: int, rounds: int
) -> list[BackendPoint]:
    """Every backend in `names` on `texts`, timed in turn `rounds` times."""
    from refit.core.registry import Registry
    from refit.service.settings import get_settings
    from refit.training.scores import scores_with_new_labels

    settings = get_settings()
    version = Registry.from_settings(settings.core).get()
    max_length = version.max_length(settings.training.max_length)
    points, models = [], []
    for name in names:
        point = BackendPoint(name, threads)
        try:
            models.append(_load(version, name, threads, max_length))
        except Exception as exc:  # reported; the other backends still run
            point.error, model = f"{type(exc).__name__}: {exc}", None
            models.append(None)
        points.append(point)
    labels: dict[str, Any] = {}
    for _ in range(rounds):
        for point, model in zip(points, models, strict=True):
            if model is None:
                continue
            # A backend's own thread count: torch's is process-wide, the last load set it.
            _set_torch_threads(threads)
            ids, rate = _sorted_run(model, texts)
            labels.setdefault(point.name, ids)
            point.batch32.append(rate)
            point.batch1.append(_batch1(model, texts[:64]))
    reference = labels.get(REFERENCE)
    for point in points:
        mine = labels.get(point.name)
        if reference is None or mine is None:
            continue
        point.agreement = float((mine == reference).mean())
        if truth is not None:
            names_of = next(m.labels for m in models if m is not None)
            f1 = [
                scores_with_new_labels(truth, [names_of[k] for k in ids], names_of).macro_f1
                for ids in (mine, reference)
            ]
            point.macro_f1_diff = f1[0] - f1[1]
    return points


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def backends_table(points: list[BackendPoint]) -> str:
    """Markdown: each backend's rates, its ratios to torch traced of the same thread
    count, its agreement."""
    ref = {p.threads: p for p in points if p.name == REFERENCE and p.batch1}
    lines = [
        "| backend | threads | batch 1 texts/s | x torch traced | batch 32 sorted texts/s "
        "| x torch traced | label agreement | macro-F1 diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        if p.error or not p.batch1:
            lines.append(f"| {p.name} | {p.threads} | failed: {p.error} | | | | | |")
            continue
        base = ref.get(p.threads)
        b1, b32 = max(p.batch1), max(p.batch32)
        r1 = f"{b1 / max(base.batch1):.2f}" if base else "-"
        r32 = f"{b32 / max(base.batch32):.2f}" if base else "-"
        f1 = "-" if p.macro_f1_diff is None else f"{p.macro_f1_diff:+.4f}"
        lines.append(
            f"| {p.name} | {p.threads} | {b1:.0f} | {r1} | {b32:.0f} | {r32} "
            f"| {p.agreement:.2%} | {f1} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Each inference backend of the champion.")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--threads", default=str(os.cpu_count() or 1), help="e.g. 2,1")
    parser.add_argument("--texts", type=int, default=512, help="texts per run, at most")
    parser.add_argument("--rounds", type=int, default=3, help="timings per backend")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from refit.core.registry import Registry
    from refit.service.settings import get_settings
    from refit.training.export_later import export_version

    settings = get_settings()
    version = Registry.from_settings(settings.core).get()
    started = time.perf_counter()
    max_length = version.max_length(settings.training.max_length)
    export_version(version.path, version.tag, max_length=max_length)
    exported = time.perf_counter() - started
    texts, truth, source = _held_texts(version, args.texts)
    names = [n for n in args.backends.split(",") if n]
    points = []
    for threads in (int(t) for t in args.threads.split(",")):
        points += backend_points(names, texts, truth, threads, args.rounds)
    table = backends_table(points)
    text = (
        f"Model {version.tag} ({version.metadata.get('base_model', '')}), {source}; "
        f"{args.rounds} rounds, best kept; export and verification took {exported:.0f} s "
        "(0 when the version had them).\n\n" + table
    )
    publish("raw backends", text, keep=not args.no_record)


if __name__ == "__main__":
    main()
