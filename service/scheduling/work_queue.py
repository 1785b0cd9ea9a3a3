"""The scheduler's queue: what it admits, refuses and hands to the next round, free of
threads and locks so each decision can be tested alone.

`WorkQueue` keeps counts of the texts and tokens waiting (tokens estimated until a
request is tokenised: `TokenEstimate`) and the measured
throughput; from them it refuses work that could not finish within the latency
budget, computes Retry-After, and drops requests past their deadline before any
compute. `service/scheduling/scheduler.py` calls it under its lock.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from refit.core.backends.base import PassModel
from refit.core.backends.outputs import Encoded
from refit.service.scheduling.batch_policy import SchedulerConfig

# Retry-After bounds: 0 makes clients retry at once, a storm; past a minute they give up.
MIN_RETRY_S, MAX_RETRY_S = 1, 60


class Ewma:
    """An exponentially weighted moving average: a seed, or None until the first sample,
    which it then takes whole."""

    def __init__(self, value: float | None = None, smoothing: float = 0.2) -> None:
        self.value, self.smoothing = value, smoothing

    def move(self, sample: float, weight: float = 1.0) -> None:
        """Move toward `sample` by `smoothing`, scaled by `weight` in [0, 1]."""
        if self.value is None:
            self.value = sample
        else:
            self.value += self.smoothing * min(1.0, max(weight, 0.0)) * (sample - self.value)


class Throughput:
    """Real tokens per second of round time on the model thread, averaged over rounds.

    Each round moves the estimate in proportion to how full it was: a lone short text
    pays a pass's fixed cost for a few tokens, and idle-time rounds dragging the
    estimate down would refuse the start of the next spike, when rounds are full.
    """

    def __init__(self, initial: float | None = None, smoothing: float = 0.2) -> None:
        self._rate = Ewma(initial, smoothing)

    @property
    def tokens_per_s(self) -> float | None:
        return self._rate.value

    def update(self, tokens: int, seconds: float, fullness: float) -> None:
        if seconds > 0 and tokens > 0:
            self._rate.move(tokens / seconds, weight=fullness)


class TokenEstimate:
    """Tokens a request will hold, from its characters, until its round tokenises it.

    Requests are admitted or refused on arrival, before they are tokenised (that
    happens on the model thread, a round's texts in one call), so admission counts
    an estimate: characters over the characters-per-token ratio of the texts
    tokenised so far, plus the special tokens of each text. A round's real counts
    then replace its requests' estimates in the running totals.
    """

    def __init__(self, chars_per_token: float = 4.0, specials: int = 2) -> None:
        self._ratio = Ewma(chars_per_token)
        self.specials = specials

    @property
    def chars_per_token(self) -> float:
        assert self._ratio.value is not None  # seeded in __init__
        return self._ratio.value

    def __call__(self, texts: Sequence[str]) -> int:
        chars = sum(len(text) for text in texts)
        return math.ceil(chars / self.chars_per_token) + self.specials * len(texts)

    def learn(self, chars: int, tokens: int, texts: int) -> None:
        """Move the ratio toward that of `texts` texts just tokenised."""
        content = tokens - self.specials * texts
        if chars > 0 and content > 0:
            self._ratio.move(chars / content)


@dataclass(eq=False)
class Request:
    """A request in the queue, and where its answer goes.

    `encoded` is None until the model thread tokenises the request with the rest of
    its round; until then `tokens` is `TokenEstimate`'s figure, then the real count.
    """

    texts: Sequence[str]
    tokens: int
    enqueued: float  # on the scheduler's clock
    deadline: float  # arrival plus the latency budget
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    encoded: Encoded | None = None
    encoder: PassModel | None = None  # the classifier that tokenised it
    tokenize_s: float = 0.0  # its share of its round's tokenizer call
    answered: bool = False  # set on the model thread once an answer is scheduled

    def __post_init__(self) -> None:
        self.size = len(self.texts)

    def cancelled(self) -> bool:
        return self.future.cancelled()


class WorkQueue:
    """Requests waiting for the model, and counts of the work they hold.

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

    def tokenised(self, change: int) -> None:
        """The running round's requests were tokenised: their real tokens replace the
        estimates `take_round` counted (`change`: real minus estimated)."""
        self.running = [self.running[0], self.running[1] + change]

    def round_done(self, texts: int, tokens: int, busy_s: float) -> None:
        self.running = [0, 0]
        self.throughput.update(tokens, busy_s, texts / self.config.max_batch_size)

    def drain(self) -> list[Request]:  # everything still waiting, removed
        left, self.waiting, self.queued = list(self.waiting), deque(), [0, 0]
        return left

    def _count(self, item: Request, sign: int) -> None:
        self.queued = [self.queued[0] + sign * item.size, self.queued[1] + sign * item.tokens]
