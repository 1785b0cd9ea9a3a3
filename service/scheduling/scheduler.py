"""Refit's own request scheduler: one queue and one model thread per worker process.

A request is admitted or refused at once on arrival, from the tokens queued ahead
and the measured throughput; its own tokens are estimated from its characters
(`work_queue.TokenEstimate`). The event loop never tokenises: the model thread
tokenises each round's texts in one tokenizer call, which releases the GIL, and
is cheaper per text than a call per request. The model thread never waits to fill
a batch: whenever it is free it takes a round (`work_queue`, `batch_policy`),
tokenises it and runs its passes, cut by what a pass costs (`_overhead_tokens`).
The served model is read once per round and every request finishes within its
round, so a hot-swap never mixes two versions in one response. Requests past their
deadline, or whose client went away, are dropped before any compute.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from refit.core.backends.base import PassModel
from refit.core.backends.outputs import BatchOutput, Encoded
from refit.core.errors import DeadlineExpired, ModelFailure, Overloaded, SchedulerClosed
from refit.core.loop_handoff import settle_all
from refit.core.quiet_log import QuietLog
from refit.service.model.heap_trim import HeapTrimmer
from refit.service.scheduling.batch_policy import PassInfo, Round, SchedulerConfig, time_rounds
from refit.service.scheduling.observer import Cause, Observer
from refit.service.scheduling.work_queue import Ewma, Request, TokenEstimate, WorkQueue

logger = logging.getLogger(__name__)

DEPTH_EVERY_S = 0.1  # the queue-depth gauges, updated on arrival at most this often


class Served(Protocol):
    """A served model (`service.model.predictor.ServedModel`): a classifier and its version."""

    @property
    def classifier(self) -> PassModel: ...


M = TypeVar("M", bound=Served)


@dataclass(frozen=True)
class Classified(Generic[M]):
    """One request's results: row i of `output` belongs to text i."""

    texts: Sequence[str]
    output: BatchOutput  # compute_seconds: the passes that held its texts
    model: M  # the served model, and so the version, that computed every row
    # From enqueueing to the start of its round; None without this queue (no passes).
    queue_wait_s: float | None
    passes: tuple[PassInfo, ...]  # the passes that held its texts
    elapsed_s: float  # from arrival to the end of its last pass


R = TypeVar("R")
# Turns the requests one pass finished into their answers, on the model thread: work
# done once per pass (a log record, metric updates) instead of once per request.
Finish = Callable[[Sequence[Classified[M]]], Sequence[R]]


class Scheduler(Generic[M, R]):
    """The queue and model thread of one worker; `current_model` is read once per round,
    and `finish` makes the answers of the requests each pass completes."""

    def __init__(
        self,
        current_model: Callable[[], M],
        config: SchedulerConfig,
        *,
        finish: Finish[M, R],
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
        heap: HeapTrimmer | None = None,
        estimate: TokenEstimate | None = None,
    ) -> None:
        self.current_model, self.config, self.finish = current_model, config, finish
        self.heap = heap or HeapTrimmer()
        self.observer = observer or Observer()
        self._clock = clock
        self._cond = threading.Condition()  # guards _work and _closed
        self._work = WorkQueue(config)
        self._estimate = estimate or TokenEstimate()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pass_ids = itertools.count(1)
        self._answering = Ewma(smoothing=0.2)  # the model thread's own seconds per pass
        self._depth_due = 0.0
        # One line a minute for refusals and failures; the observer counts each one.
        self._refusal_log = QuietLog(logger, clock=clock)
        self._failure_log = QuietLog(logger, logging.ERROR, clock=clock)

    @property
    def tokens_per_s(self) -> float | None:
        return self._work.throughput.tokens_per_s

    def start(self) -> None:
        """Measure the throughput (unless configured), then start the model thread."""
        if self.tokens_per_s is None:  # timed warm-up rounds: admission works at once
            work = time_rounds(self.current_model().classifier, self.config, self._clock)
            self._work.throughput.update(*work, fullness=1.0)
        self._thread = threading.Thread(target=self._run, name="refit-scheduler", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 30.0) -> None:
        """Answer queued requests with SchedulerClosed; the running round finishes."""
        with self._cond:
            self._closed = True
            left = self._work.drain()
            self._cond.notify_all()
        self.observer.queue_depth(0, 0)
        _answer_all(
            [(entry, SchedulerClosed("the worker is shutting down; retry")) for entry in left]
        )
        for entry in left:
            self.observer.refused("closed", entry.size)
        if self._thread is not None:
            self._thread.join(timeout_s)

    async def classify(self, texts: Sequence[str]) -> R:
        """The answer for `texts` (at least one), once the model thread has made it.

        Raises Overloaded at once; later DeadlineExpired, ModelFailure or SchedulerClosed.
        """
        if not texts:
            raise ValueError("classify needs at least one text")
        now, loop = self._clock(), asyncio.get_running_loop()
        deadline = now + self.config.latency_budget_s
        entry = Request(texts, self._estimate(texts), now, deadline, loop.create_future(), loop)
        self._enqueue(entry)
        # Cancelling this task cancels the future; the model thread then drops the
        # request when it reaches the head of the queue, before any compute.
        return await entry.future

    def refuse_if_full(self) -> None:
        """Raise Overloaded when the queue would refuse any request now.

        Asked with the smallest request there is (one text of one token), so it
        refuses only what `classify` would refuse too, and it needs no body: the front
        door (`service.scheduling.admission`) asks it before a request is read or parsed, where
        an overloaded worker spends its time otherwise.
        """
        with self._cond:  # on every request's path: compute the retry only to refuse
            cause = None if self._closed else self._work.refusal(1, 1)
            if cause is None:
                return
            retry = self._work.retry_after_s()
        self._refused(cause, 0, retry)
        raise Overloaded(retry, cause)

    def _enqueue(self, entry: Request) -> None:
        with self._cond:
            if self._closed:
                raise SchedulerClosed("the worker is shutting down; retry")
            cause = self._work.refusal(entry.size, entry.tokens)
            if cause is None:
                self._work.push(entry)
                self._cond.notify()
                depth = self._work.queued if entry.enqueued >= self._depth_due else None
            else:
                retry = self._work.retry_after_s()
        if cause is None:
            if depth is not None:  # every round reports it too: here only while rounds are long
                self._depth_due = entry.enqueued + DEPTH_EVERY_S
                self.observer.queue_depth(*depth)
            return
        self._refused(cause, entry.size, retry)
        raise Overloaded(retry, cause)

    def _refused(self, cause: Cause, texts: int, retry: int) -> None:
        """Count a refusal; warn at most once a minute, never with a traceback."""
        self.observer.refused(cause, texts)
        self._refusal_log("refused %d texts (%s), retry in %d s", texts, cause, retry)

    def _run(self) -> None:
        while (entries := self._next_round()) is not None:
            if not entries:  # all stale
                continue
            try:  # the model is read once per round: one version per response
                self._execute(self.current_model(), entries)
            except Exception as exc:  # a fault outside any one pass: fail the round, go on
                self._fail(entries, exc)
                with self._cond:
                    self._work.round_done(0, 0, 0.0)
            self.heap.after_round(idle=not self._work.waiting)  # a racy read is harmless

    def _next_round(self) -> list[Request] | None:
        """Block until something is queued and take the next round; None once closed."""
        with self._cond:
            while not self._work.waiting and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            entries, dropped = self._work.take_round(self._clock())
            depth, retry = self._work.queued, self._work.retry_after_s()
        self.observer.queue_depth(*depth)
        _answer_all([(e, DeadlineExpired(retry)) for e, cause in dropped if cause == "deadline"])
        for entry, cause in dropped:
            if cause == "deadline":
                self._refused("deadline", entry.size, retry)
            else:
                self.observer.refused("cancelled", entry.size)
        return entries

    def _execute(self, served: M, entries: list[Request]) -> None:
        """Run one round's passes; answer each request as soon as its last pass is done."""
        model, started = served.classifier, self._clock()
        for entry in entries:
            self.observer.queue_wait(started - entry.enqueued)
        round_ = Round(self._tokenise(model, entries), self._overhead_tokens(model), self.config)
        tokens = 0
        for planned in round_.plan:
            began = self._clock()
            result = round_.run(planned, model, next(self._pass_ids), self._clock)
            if (info := result.info) is not None:
                self.observer.forward_pass(info)
                tokens += info.tokens
            if result.finished:
                self._finish(served, round_, entries, result.finished, started)
            if result.error is not None:
                self._fail([entries[r] for r in result.failed], result.error)
            if info is not None:  # what the pass cost beyond the engine's own time
                self._answering.move(self._clock() - began - info.seconds)
            with self._cond:
                self._work.computed(len(planned.lengths), int(planned.lengths.sum()))
        busy = self._clock() - started  # the whole round: the rate at which queues drain
        with self._cond:
            self._work.round_done(sum(e.size for e in entries), tokens, busy)

    def _overhead_tokens(self, model: PassModel) -> int:
        """What one more pass costs, in padded tokens: the engine's fixed cost as
        measured at warm-up, plus the model thread's own work per pass (answering its
        requests: a log record, metric updates, waking the event loop). With a small
        model, or on a GPU, that work is most of a pass's cost; counting it keeps
        passes from being cut to a few texts each. Its per-text part is counted too,
        which errs toward fewer, wider passes."""
        if model.pass_cost is None:
            return model.overhead_tokens
        extra = self._answering.value or 0.0
        return model.pass_cost.overhead_tokens(extra, cap=self.config.max_batch_tokens)

    def _tokenise(self, model: PassModel, entries: list[Request]) -> list[Encoded]:
        """Each request's tokens: the round's texts in one call of `model`'s tokenizer
        (again for a request tokenised by a model a hot-swap has replaced since)."""
        todo = [entry for entry in entries if entry.encoder is not model]
        if todo:
            texts = [text for entry in todo for text in entry.texts]
            began = self._clock()
            encoded = model.encode(texts)
            share = (self._clock() - began) / len(texts)
            change = 0
            for entry, part in zip(todo, encoded.split([e.size for e in todo]), strict=True):
                real = int(part.lengths.sum())
                change += real - entry.tokens
                entry.encoded, entry.encoder, entry.tokens = part, model, real
                entry.tokenize_s = share * entry.size
            self._estimate.learn(sum(map(len, texts)), int(encoded.lengths.sum()), len(texts))
            with self._cond:
                self._work.tokenised(change)
        return [entry.encoded for entry in entries if entry.encoded is not None]

    def _finish(
        self, served: M, round_: Round, entries: list[Request], finished: list[int], started: float
    ) -> None:
        """Answer the requests a pass completed (indices into the round's `entries`); if
        making their answers fails, only they fail."""
        done, results, now = [entries[r] for r in finished], [], self._clock()
        for r, entry in zip(finished, done, strict=True):
            output, passes = round_.output(r, entry.tokenize_s)
            waited, elapsed = started - entry.enqueued, now - entry.enqueued
            results.append(Classified(entry.texts, output, served, waited, passes, elapsed))
        try:
            answers = self.finish(results)
        except Exception as exc:
            self._fail(done, exc)
            return
        _answer_all(list(zip(done, answers, strict=True)))

    def _fail(self, entries: list[Request], exc: Exception) -> None:
        self._failure_log("a forward pass failed for %d requests", len(entries), exc_info=exc)
        left = [entry for entry in entries if not entry.answered]
        message = f"the model failed on this request: {exc!r}"
        _answer_all([(entry, ModelFailure(message)) for entry in left])  # one each: tracebacks
        for entry in left:
            self.observer.refused("model_error", entry.size)


def _answer_all(answers: Sequence[tuple[Request, object]]) -> None:
    """Hand each request its outcome (`core.loop_handoff`: one wake-up per loop)."""
    for entry, _ in answers:
        entry.answered = True
    settle_all((entry.loop, entry.future, outcome) for entry, outcome in answers)
