"""The scheduler's decisions, free of threads and locks so each can be tested alone.

`WorkQueue` admits or refuses requests and picks the next round; `plan_round` cuts a
round's texts into forward passes; `Round` runs them in order and gathers each
request's rows. `service/scheduler.py` adds the model thread, the lock and replies.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from core.inference import BatchOutput, Encoded, PassOutput, plan_buckets

# Retry-After bounds: 0 makes clients retry at once, a storm; past a minute they give up.
MIN_RETRY_S, MAX_RETRY_S = 1, 60


class PassModel(Protocol):
    """What scheduling needs of a classifier (`core.inference.TextClassifier`)."""

    @property
    def overhead_tokens(self) -> int: ...
    def encode(self, texts: Sequence[str]) -> Encoded: ...
    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput: ...


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


class Throughput:
    """Real tokens per second of round time on the model thread (an EWMA over rounds).

    Each round moves the estimate in proportion to how full it was: a lone short text
    pays a pass's fixed cost for a few tokens, and idle-time rounds dragging the
    estimate down would refuse the start of the next spike, when rounds are full.
    """

    def __init__(self, initial: float | None = None, smoothing: float = 0.2) -> None:
        self.tokens_per_s, self.smoothing = initial, smoothing

    def update(self, tokens: int, seconds: float, fullness: float) -> None:
        if seconds <= 0 or tokens <= 0:
            return
        rate = tokens / seconds
        if self.tokens_per_s is None:
            self.tokens_per_s = rate
            return
        weight = self.smoothing * min(1.0, max(fullness, 0.0))
        self.tokens_per_s += weight * (rate - self.tokens_per_s)


@dataclass(eq=False)
class Request:
    """A request in the queue: its texts tokenised once, and where its answer goes."""

    texts: Sequence[str]
    encoded: Encoded
    encoder: PassModel  # the classifier that tokenised it
    enqueued: float  # on the scheduler's clock, after tokenising
    deadline: float  # arrival plus the latency budget
    tokenize_s: float
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    answered: bool = False  # set on the model thread once an answer is scheduled

    def __post_init__(self) -> None:
        self.size, self.tokens = len(self.encoded.lengths), int(self.encoded.lengths.sum())

    def cancelled(self) -> bool:
        return self.future.cancelled()


class WorkQueue:
    """Requests waiting for the model, and exact counts of the work they hold.

    Not thread-safe: the scheduler calls it under its lock.
    """

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.waiting: deque[Request] = deque()
        self.queued = [0, 0]  # texts, tokens waiting
        self.running = [0, 0]  # texts, tokens of the running round not yet computed
        self.throughput = Throughput(config.tokens_per_s)

    def refusal(self, texts: int, tokens: int) -> Literal["over_budget", "queue_full"] | None:
        """None to admit a request of `texts` texts and `tokens` tokens, else the cause.

        With nothing queued a request is always admitted, even one that alone would
        take longer than the budget: refusing it would refuse it forever. It waits at
        most for the round already running. While the throughput is unknown only
        the hard cap on held (queued and running) texts applies.
        """
        if not self.waiting:
            return None
        if self.queued[0] + self.running[0] + texts > self.config.max_held_texts:
            return "queue_full"
        rate = self.throughput.tokens_per_s
        ahead = self.queued[1] + self.running[1]
        if rate and (ahead + tokens) / rate > self.config.latency_budget_s * self.config.headroom:
            return "over_budget"
        return None

    def retry_after_s(self) -> int:
        """Whole seconds until the work ahead should have drained, within the bounds."""
        rate = self.throughput.tokens_per_s
        if not rate:
            return MIN_RETRY_S
        ahead = self.queued[1] + self.running[1]
        return max(MIN_RETRY_S, min(MAX_RETRY_S, math.ceil(ahead / rate)))

    def push(self, item: Request) -> None:
        self.waiting.append(item)
        self._count(item, +1)

    def take_round(self, now: float) -> tuple[list[Request], list[tuple[Request, str]]]:
        """(the next round, oldest first; the stale requests dropped on the way).

        The oldest request always goes, even when it alone holds more than
        `max_batch_size` texts: it is served whole, in several passes, never starved.
        Later ones join while the round stays within `max_batch_size` texts; the
        first that does not fit ends the round, so a large request is not overtaken
        forever by small ones behind it.
        """
        taken: list[Request] = []
        dropped: list[tuple[Request, str]] = []
        texts = tokens = 0
        while self.waiting:
            item = self.waiting[0]
            stale = "cancelled" if item.cancelled() else "deadline" if now > item.deadline else ""
            if not stale and texts and texts + item.size > self.config.max_batch_size:
                break
            self._count(self.waiting.popleft(), -1)
            if stale:
                dropped.append((item, stale))
            else:
                taken.append(item)
                texts, tokens = texts + item.size, tokens + item.tokens
        self.running = [texts, tokens]
        return taken, dropped

    def computed(self, texts: int, tokens: int) -> None:
        """A planned pass of the running round is over (run, skipped or failed)."""
        self.running = [self.running[0] - texts, self.running[1] - tokens]

    def round_done(self, texts: int, tokens: int, busy_s: float) -> None:
        self.running = [0, 0]
        self.throughput.update(tokens, busy_s, texts / self.config.max_batch_size)

    def drain(self) -> list[Request]:  # everything still waiting, removed
        left, self.waiting, self.queued = list(self.waiting), deque(), [0, 0]
        return left

    def _count(self, item: Request, sign: int) -> None:
        self.queued = [self.queued[0] + sign * item.size, self.queued[1] + sign * item.tokens]


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


@dataclass(frozen=True)
class PassInfo:
    id: int  # unique within the scheduler
    texts: int
    tokens: int  # real tokens
    padded_tokens: int  # texts x the longest: positions computed
    seconds: float

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
        info = PassInfo(pass_id, len(rows), tokens, live.padded_tokens, clock() - began)
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
        """A finished request's rows in input order, shaped as `TextClassifier.predict`'s."""
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
