"""How a round becomes forward passes, free of threads and locks so it can be tested alone.

`plan_round` cuts a round's texts into forward passes; `Round` runs them in order and
gathers each request's rows. `service/scheduling/work_queue.py` decides what a round holds, and
`service/scheduling/scheduler.py` adds the model thread, the lock and replies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from refit.core.backends.base import PassModel, plan_buckets
from refit.core.backends.outputs import BatchOutput, Encoded


@dataclass(frozen=True)
class SchedulerConfig:
    max_batch_size: int = 64  # texts per pass, and per round unless one request is larger
    max_batch_tokens: int = 16384  # padded tokens per pass
    latency_budget_s: float = 2.0  # admission bound, and the deadline after arrival
    max_held_texts: int = 4096  # queued plus running texts: the memory bound
    tokens_per_s: float | None = None  # throughput seed; None: measured at start
    # Admit work estimated to finish within this share of the budget: the estimate is an
    # average, and work it underrates would wait past its deadline only to be dropped.
    headroom: float = 0.8


@dataclass(frozen=True)
class PlannedPass:
    """One forward pass: texts from one or more requests of a round, shortest first."""

    requests: np.ndarray  # (k,) each text's request, as an index into the round
    items: np.ndarray  # (k,) each text's index within its request
    lengths: np.ndarray  # (k,) token lengths, non-decreasing

    @property
    def padded_tokens(self) -> int:
        return len(self.lengths) * int(self.lengths.max())

    def without(self, dropped: set[int]) -> PlannedPass:
        keep = ~np.isin(self.requests, list(dropped))
        return PlannedPass(self.requests[keep], self.items[keep], self.lengths[keep])


def plan_round(
    lengths: Sequence[np.ndarray], *, max_batch_size: int, max_batch_tokens: int, overhead: int
) -> list[PlannedPass]:
    """Cut the texts of a round's requests (`lengths[r]`: request r's) into passes.

    Texts are sorted by token length across requests, so a short text shares a pass
    with short texts of other requests instead of being padded to a long one of its
    own; `plan_buckets` cuts where the padded-token budget, the text cap or the
    padding-against-one-more-pass trade-off (`overhead`, in tokens) says.
    """
    flat = np.concatenate(lengths)
    requests = np.repeat(np.arange(len(lengths)), [len(x) for x in lengths])
    items = np.concatenate([np.arange(len(x)) for x in lengths])
    buckets = plan_buckets(
        flat, max_batch_tokens=max_batch_tokens, overhead_tokens=overhead, max_items=max_batch_size
    )
    return [PlannedPass(requests[b], items[b], flat[b]) for b in buckets]


CALIBRATION = ((8, 24), (32, 60), (32, 60))  # warm-up rounds: (texts, words each)


def time_rounds(
    model: PassModel, config: SchedulerConfig, clock: Callable[[], float]
) -> tuple[int, float]:
    """(real tokens, seconds) of a full round on `model`, timed after warm-up rounds:
    the throughput the scheduler admits work by before it has served any."""
    for texts, words in CALIBRATION:  # the last, warm by then, is the one measured
        encoded = model.encode(["warm up " * (words // 2)] * texts)
        round_ = Round([encoded], model.overhead_tokens, config)
        began = clock()
        for planned in round_.plan:
            if (error := round_.run(planned, model, 0, clock).error) is not None:
                raise error
        seconds = clock() - began
    return int(encoded.lengths.sum()), seconds


@dataclass(frozen=True)
class PassInfo:
    id: int  # unique within the scheduler
    texts: int
    tokens: int  # real tokens
    padded_tokens: int  # texts x the longest: positions computed
    seconds: float
    rechecked: int = 0  # texts the backend answered again on fp32 (`PassOutput.rechecked`)

    @property
    def width(self) -> int:
        return self.padded_tokens // self.texts


@dataclass(frozen=True)
class PassResult:
    info: PassInfo | None  # None: it raised, or all its texts were dropped
    finished: list[int]  # requests whose last pass this was: their output is complete
    failed: list[int]  # requests with texts in this pass, which raised `error`
    error: Exception | None = None


# One pass's share of a request: its item indices, their probs and embeddings, the pass.
_Part = tuple[np.ndarray, np.ndarray, np.ndarray | None, PassInfo]


class Round:
    """The passes of one round over the texts of several requests, run in order.

    A pass that raises fails only the requests with texts in it; their texts are
    left out of later passes, and every other request of the round completes.
    """

    def __init__(self, encoded: Sequence[Encoded], overhead: int, config: SchedulerConfig) -> None:
        self.encoded = list(encoded)
        self.plan = plan_round(
            [e.lengths for e in self.encoded],
            max_batch_size=config.max_batch_size,
            max_batch_tokens=config.max_batch_tokens,
            overhead=overhead,
        )
        self.remaining = np.zeros(len(self.encoded), dtype=np.int64)  # passes still to run
        for planned in self.plan:
            self.remaining[np.unique(planned.requests)] += 1
        self.parts: list[list[_Part]] = [[] for _ in self.encoded]
        self.failed: set[int] = set()

    def run(
        self, planned: PlannedPass, model: PassModel, pass_id: int, clock: Callable[[], float]
    ) -> PassResult:
        """Run `planned` less the texts of failed requests, and keep its rows."""
        live = planned.without(self.failed) if self.failed else planned
        if not len(live.lengths):
            return PassResult(None, [], [])
        pairs = zip(live.requests.tolist(), live.items.tolist(), strict=True)
        rows = [self.encoded[r].rows[i] for r, i in pairs]
        began = clock()
        try:
            out = model.run_pass(rows, live.lengths)
        except Exception as exc:
            failed = np.unique(live.requests).tolist()
            self.failed.update(failed)
            return PassResult(None, [], failed, exc)
        tokens = int(live.lengths.sum())
        info = PassInfo(
            pass_id, len(rows), tokens, live.padded_tokens, clock() - began, out.rechecked
        )
        finished = []
        for r in np.unique(live.requests).tolist():
            mine = live.requests == r
            embeddings = None if out.embeddings is None else out.embeddings[mine]
            self.parts[r].append((live.items[mine], out.probs[mine], embeddings, info))
            self.remaining[r] -= 1
            if self.remaining[r] == 0:
                finished.append(r)
        return PassResult(info, finished, [])

    def output(self, request: int, tokenize_s: float) -> tuple[BatchOutput, tuple[PassInfo, ...]]:
        """A finished request's rows in input order, shaped as `Backend.predict`'s."""
        items, probs, embeddings, passes = zip(*self.parts[request], strict=True)
        order = np.argsort(np.concatenate(items))
        encoded = self.encoded[request]
        output = BatchOutput(
            probs=np.concatenate(probs)[order],
            n_tokens=encoded.lengths,
            truncated=encoded.truncated,
            padded_tokens=sum(len(i) * p.width for i, p in zip(items, passes, strict=True)),
            tokenize_seconds=tokenize_s,
            compute_seconds=sum(p.seconds for p in passes),
            unknown_tokens=encoded.unknown_tokens,
            embeddings=None if embeddings[0] is None else np.concatenate(embeddings)[order],
        )
        return output, passes
