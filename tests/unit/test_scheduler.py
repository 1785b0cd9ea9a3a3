"""The request scheduler: rounds, passes, admission, deadlines, failures, hot-swaps.

A fake model records the passes it is given, can fail or block on an event, and
advances an injected clock, so every check is about behaviour, never speed. The
last tests run the real tiny model and compare with `TorchBackend.predict`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from refit.core.backends.encoding import TextEncoder
from refit.core.backends.outputs import Encoded, PassOutput
from refit.core.backends.pass_cost import PassCost
from refit.core.backends.torch_backend import TorchBackend
from refit.core.errors import DeadlineExpired, ModelFailure, Overloaded, SchedulerClosed
from refit.service.scheduling.batch_policy import PassInfo, PlannedPass, SchedulerConfig, plan_round
from refit.service.scheduling.observer import Observer
from refit.service.scheduling.scheduler import Classified, Scheduler
from refit.service.scheduling.work_queue import Request, Throughput, TokenEstimate, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeModel:
    """A text is as many tokens as words; probs row = (tokens / 1000, version)."""

    def __init__(self, version: int = 1, clock: FakeClock | None = None) -> None:
        self.version = version
        self.clock = clock
        self.overhead_tokens = 48
        self.pass_cost: PassCost | None = None  # unmeasured: plan by overhead_tokens
        self.texts: list[str] = []  # a token id is an index here
        self.encoded: list[str] = []
        self.passes: list[list[str]] = []
        self.fail_on: set[str] = set()
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.pass_seconds = 0.0
        self.encode_calls: list[tuple[list[str], str]] = []  # (texts, thread name)

    def encode(self, texts: Sequence[str]) -> Encoded:
        self.encode_calls.append((list(texts), threading.current_thread().name))
        self.encoded.extend(texts)
        rows = []
        for text in texts:
            self.texts.append(text)
            rows.append([len(self.texts) - 1] * len(text.split()))
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        zeros = np.zeros(len(rows), dtype=np.int64)
        return Encoded(rows, lengths, zeros.astype(bool), zeros)

    def run_pass(self, rows: Sequence[Sequence[int]], lengths: np.ndarray) -> PassOutput:
        texts = [self.texts[row[0]] for row in rows]
        assert [len(r) for r in rows] == lengths.tolist()
        self.passes.append(texts)
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test forgot to open the gate"
        if self.clock is not None:
            self.clock.advance(self.pass_seconds)
        if self.fail_on & set(texts):
            raise RuntimeError("injected failure")
        probs = np.stack([lengths / 1000, np.full(len(rows), self.version)], axis=1)
        return PassOutput(probs.astype(np.float32), None)

    def block(self) -> threading.Event:
        self.gate, self.entered = threading.Event(), threading.Event()
        return self.gate

    def seen(self) -> set[str]:
        return {t for p in self.passes for t in p}


@dataclass
class FakeServed:
    classifier: FakeModel
    version: str


@dataclass
class Recorder(Observer):
    waits: list[float] = field(default_factory=list)
    depths: list[tuple[int, int]] = field(default_factory=list)
    passes: list[PassInfo] = field(default_factory=list)
    refusals: list[tuple[str, int]] = field(default_factory=list)

    def queue_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    def queue_depth(self, texts: int, tokens: int) -> None:
        self.depths.append((texts, tokens))

    def forward_pass(self, info: PassInfo) -> None:
        self.passes.append(info)

    def refused(self, cause: str, texts: int) -> None:  # type: ignore[override]
        self.refusals.append((cause, texts))


class WordTokens(TokenEstimate):
    """The fake model's exact count (a token a word), so admission tests count exactly."""

    def __call__(self, texts: Sequence[str]) -> int:
        return sum(len(text.split()) for text in texts)

    def learn(self, chars: int, tokens: int, texts: int) -> None:
        pass


def words(n: int, tag: str) -> str:
    """A text of exactly `n` tokens for the fake model, recognisable by `tag`."""
    return " ".join([tag] * n)


@pytest.fixture
def build() -> Iterator[Callable[..., tuple[Scheduler, FakeModel, Recorder, list[FakeServed]]]]:
    made: list[tuple[Scheduler, FakeModel]] = []

    def make(
        model: FakeModel | None = None,
        clock: FakeClock | None = None,
        finish: Callable[[Sequence[Classified]], Sequence[Classified]] = list,
        **limits: float,
    ):
        model = model or FakeModel(clock=clock)
        current = [FakeServed(model, f"v{model.version}")]
        recorder = Recorder()
        config = SchedulerConfig(**{"tokens_per_s": 1000.0, **limits})  # type: ignore[arg-type]
        scheduler = Scheduler(
            lambda: current[0],
            config,
            finish=finish,
            observer=recorder,
            clock=clock or FakeClock(),
            estimate=WordTokens(),
        )
        scheduler.start()
        made.append((scheduler, model))
        return scheduler, model, recorder, current

    yield make
    for scheduler, model in made:
        if model.gate is not None:
            model.gate.set()
        scheduler.close(timeout_s=5)


def run(coro):  # type: ignore[no-untyped-def]
    async def bounded():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


async def submit(scheduler: Scheduler, *requests: list[str]) -> list[asyncio.Task]:
    """Start requests as tasks; one yield lets each tokenise and enqueue in order."""
    tasks = []
    for texts in requests:
        tasks.append(asyncio.create_task(scheduler.classify(texts)))
        await asyncio.sleep(0)
    return tasks


async def plug(scheduler: Scheduler, model: FakeModel) -> tuple[asyncio.Task, threading.Event]:
    """Occupy the model thread with a one-text request blocked inside its pass."""
    gate = model.block()
    (task,) = await submit(scheduler, [words(1, "plug")])
    assert await asyncio.to_thread(model.entered.wait, 10)
    return task, gate


# -- rounds and passes ------------------------------------------------------------------


def test_a_round_is_tokenised_in_one_call_on_the_model_thread(build) -> None:
    scheduler, model, _, _ = build(max_batch_size=64)
    calls_at_start = len(model.encode_calls)  # start()'s warm-up rounds

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        tasks = await submit(scheduler, [words(2, "a")], [words(3, "b"), words(1, "c")])
        gate.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario())
    calls = model.encode_calls[calls_at_start:]
    assert [texts for texts, _ in calls] == [
        [words(1, "plug")],
        [words(2, "a"), words(3, "b"), words(1, "c")],  # the second round, in one call
    ]
    assert all(thread != "MainThread" for _, thread in calls)  # never on the event loop


def test_the_token_estimate_learns_the_ratio_of_what_was_tokenised() -> None:
    estimate = TokenEstimate(chars_per_token=4.0)
    assert estimate(["x" * 40, "y" * 8]) == 10 + 2 + 2 + 2  # chars / 4, two specials a text
    for _ in range(60):
        estimate.learn(chars=600, tokens=100 + 2 * 10, texts=10)  # 6 characters a token
    assert estimate.chars_per_token == pytest.approx(6.0, rel=1e-3)
    assert estimate(["x" * 59]) == 10 + 2  # ceil(59 / 6)
    estimate.learn(chars=0, tokens=0, texts=0)  # nothing learned from nothing
    assert estimate.chars_per_token == pytest.approx(6.0, rel=1e-3)


def test_a_request_at_an_idle_scheduler_runs_alone_at_once(build) -> None:
    # A batch size far above one request: a scheduler that waited to fill it would time out.
    scheduler, model, recorder, _ = build(max_batch_size=1000)
    texts = [words(3, "a"), words(5, "b")]
    result = run(scheduler.classify(texts))
    assert model.passes == [texts]
    assert result.queue_wait_s == 0.0
    assert recorder.waits == [0.0]
    assert [p.texts for p in result.passes] == [2]
    assert result.output.n_tokens.tolist() == [3, 5]


def test_every_pass_keeps_the_token_budget_and_the_text_cap(build) -> None:
    scheduler, model, recorder, _ = build(max_batch_size=4, max_batch_tokens=40)
    rng = np.random.default_rng(0)
    requests = [
        [words(int(n), f"r{i}t{j}") for j, n in enumerate(rng.integers(1, 12, size=k))]
        for i, k in enumerate(rng.integers(1, 7, size=12))
    ]

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        tasks = await submit(scheduler, *requests)
        gate.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario())
    assert len(model.passes) > 3
    for texts in model.passes:
        longest = max(len(t.split()) for t in texts)
        assert len(texts) <= 4
        assert len(texts) * longest <= 40 or len(texts) == 1
    assert all(p.padded_tokens <= 40 for p in recorder.passes)


def test_texts_are_sorted_by_length_across_requests(build) -> None:
    scheduler, model, _, _ = build(max_batch_size=64, max_batch_tokens=10_000)
    model.overhead_tokens = 10_000  # padding is free: one pass for the whole round
    first = [words(9, "a9"), words(1, "a1"), words(5, "a5")]
    second = [words(4, "b4"), words(2, "b2"), words(7, "b7")]

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        tasks = await submit(scheduler, first, second)
        gate.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario())
    round_pass = model.passes[1]
    assert [t.split()[0] for t in round_pass] == ["a1", "b2", "b4", "a5", "b7", "a9"]


def test_a_pass_costs_what_was_measured_plus_the_schedulers_own_work_per_pass(build) -> None:
    """Padding is traded against one more pass at its full price: the engine's fixed
    cost, measured at warm-up, and what answering a pass costs the model thread."""
    clock = FakeClock()

    def answering_costs_50_ms(done: Sequence[Classified]) -> list[Classified]:
        clock.advance(0.05)
        return list(done)

    scheduler, model, _, _ = build(
        clock=clock, finish=answering_costs_50_ms, max_batch_size=64, max_batch_tokens=10_000
    )
    # The engine alone: a pass costs nothing fixed, a padded token 1 ms.
    model.pass_cost = PassCost(fixed_s=0.0, per_token_s=0.001)
    mixed = [words(1, "m1"), words(9, "m9")]

    async def scenario() -> None:
        for _ in range(12):
            await scheduler.classify(mixed)

    run(scenario())
    # First: nothing learnt, and one token of padding outweighs one more pass. Once
    # the scheduler has learnt that answering a pass costs 50 ms, worth 50 padded
    # tokens, 8 tokens of padding cost less than a pass: one pass each.
    assert model.passes[:2] == [[words(1, "m1")], [words(9, "m9")]]
    assert model.passes[-3:] == [mixed, mixed, mixed]


def test_a_round_takes_whole_requests_up_to_the_text_cap(build) -> None:
    scheduler, model, _, _ = build(max_batch_size=4)
    small, big, later = [words(2, "s")], [words(2, f"b{i}") for i in range(6)], [words(2, "l")]

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        tasks = await submit(scheduler, small, big, later)
        gate.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario())
    # round 2 is `small` alone: `big` does not fit beside it; round 3 is `big`, whole,
    # in two passes although it exceeds the cap; `later` waits for round 4.
    assert model.passes[1] == small
    assert sorted(model.passes[2] + model.passes[3]) == sorted(big)
    assert model.passes[4] == later


def test_a_request_split_across_passes_answers_in_order(build) -> None:
    scheduler, model, _, _ = build(max_batch_size=2, max_batch_tokens=16)
    lengths = [7, 1, 4, 8, 2, 2, 5]
    texts = [words(n, f"t{i}") for i, n in enumerate(lengths)]
    result = run(scheduler.classify(texts))
    assert len(model.passes) >= 4
    assert result.output.n_tokens.tolist() == lengths
    np.testing.assert_allclose(result.output.probs[:, 0], np.array(lengths) / 1000)
    assert result.output.probs.shape == (len(texts), 2)
    assert len({p.id for p in result.passes}) == len(result.passes)
    assert sum(p.texts for p in result.passes) == len(texts)


# -- deadlines, admission, cancellation --------------------------------------------------


def test_a_request_past_its_deadline_is_never_computed(build) -> None:
    clock = FakeClock()
    scheduler, model, recorder, _ = build(clock=clock, latency_budget_s=1.0)

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        (late,) = await submit(scheduler, [words(3, "late")])
        clock.advance(1.5)
        gate.set()
        await blocker
        with pytest.raises(DeadlineExpired) as caught:
            await late
        assert caught.value.retry_after_s >= 1

    run(scenario())
    assert "late late late" not in model.seen()
    assert ("deadline", 1) in recorder.refusals


def test_over_budget_is_refused_at_once_with_retry_after(build) -> None:
    # 100 tokens/s, 1 s budget (0.8 s to admit): the plug runs 1 token, 60 wait; 60 more: 1.21 s.
    scheduler, model, recorder, _ = build(tokens_per_s=100.0, latency_budget_s=1.0)

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        (queued,) = await submit(scheduler, [words(60, "q")])
        with pytest.raises(Overloaded) as caught:
            await scheduler.classify([words(60, "refused")])
        assert caught.value.retry_after_s >= 1
        assert caught.value.cause == "over_budget"
        gate.set()
        await asyncio.gather(blocker, queued)

    run(scenario())
    assert words(60, "refused") not in model.seen()
    assert recorder.refusals == [("over_budget", 1)]


def test_an_empty_queue_always_admits_even_beyond_the_budget(build) -> None:
    scheduler, _, _, _ = build(tokens_per_s=10.0, latency_budget_s=0.5)
    huge = [words(50, "huge")] * 4  # 200 tokens: 20 s at the measured rate
    result = run(scheduler.classify(huge))
    assert result.output.n_tokens.tolist() == [50] * 4


def test_the_hard_cap_on_held_texts_refuses_with_queue_full(build) -> None:
    scheduler, model, recorder, _ = build(max_held_texts=5, tokens_per_s=1e9)

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        (queued,) = await submit(scheduler, [words(1, f"q{i}") for i in range(3)])
        with pytest.raises(Overloaded) as caught:
            await scheduler.classify([words(1, "x"), words(1, "y")])  # 1 + 3 + 2 > 5
        assert caught.value.cause == "queue_full"
        gate.set()
        await asyncio.gather(blocker, queued)

    run(scenario())
    assert recorder.refusals == [("queue_full", 2)]


def test_refuse_if_full_refuses_only_when_classify_would_refuse_anything(build) -> None:
    # 0.8 s of 100 tokens/s admits 80 tokens ahead: 1 running + 78 queued leaves room
    # for the smallest request (1 token), 1 + 79 does not.
    scheduler, model, recorder, _ = build(tokens_per_s=100.0, latency_budget_s=1.0)

    async def scenario() -> None:
        scheduler.refuse_if_full()  # idle: admits
        blocker, gate = await plug(scheduler, model)
        (first,) = await submit(scheduler, [words(78, "q")])
        scheduler.refuse_if_full()  # one more token still fits
        (second,) = await submit(scheduler, [words(1, "last")])
        with pytest.raises(Overloaded) as caught:
            scheduler.refuse_if_full()
        assert caught.value.cause == "over_budget"
        assert caught.value.retry_after_s >= 1
        with pytest.raises(Overloaded):  # and classify agrees for any request
            await scheduler.classify([words(1, "x")])
        gate.set()
        await asyncio.gather(blocker, first, second)

    run(scenario())
    assert recorder.refusals == [("over_budget", 0), ("over_budget", 1)]
    scheduler.refuse_if_full()  # drained: admits again


def test_a_cancelled_request_is_dropped_before_compute(build) -> None:
    scheduler, model, recorder, _ = build()

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        gone, kept = await submit(scheduler, [words(2, "gone")], [words(2, "kept")])
        gone.cancel()
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(blocker, kept)
        assert gone.cancelled()

    run(scenario())
    assert "gone gone" not in model.seen()
    assert "kept kept" in model.seen()
    assert ("cancelled", 1) in recorder.refusals


# -- failures, hot-swaps, shutdown -------------------------------------------------------


def test_a_failing_pass_fails_only_its_own_requests(build, caplog) -> None:
    scheduler, model, recorder, _ = build(max_batch_tokens=8)
    model.fail_on = {"boom"}
    short, long = [words(1, "boom"), words(1, "x")], [words(6, "long")] * 2

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        bad, good = await submit(scheduler, short, long)
        gate.set()
        await blocker
        with pytest.raises(ModelFailure):
            await bad
        assert (await good).output.n_tokens.tolist() == [6, 6]
        with pytest.raises(ModelFailure):  # a repeat within the minute: no second traceback
            await scheduler.classify(["boom"])
        return (await scheduler.classify([words(2, "after")])).output.n_tokens.tolist()

    with caplog.at_level(logging.ERROR, logger="refit.service.scheduling.scheduler"):
        assert run(scenario()) == [2]
    assert [r.exc_info is not None for r in caplog.records] == [True]
    assert recorder.refusals == [("model_error", 2), ("model_error", 1)]


def test_a_hot_swap_never_mixes_versions_in_a_response(build) -> None:
    old, new = FakeModel(1), FakeModel(2)
    scheduler, _, _, current = build(old, max_batch_size=64, max_batch_tokens=12)
    first = [words(n, f"f{n}") for n in (1, 6, 3)]
    second = [words(n, f"s{n}") for n in (2, 5)]

    async def scenario() -> tuple[list[Classified[Served]], Classified[Served]]:
        blocker, plug_gate = await plug(scheduler, old)
        inflight = await submit(scheduler, first, second)  # queued: one round
        gate = old.block()  # for the round's first pass
        plug_gate.set()
        await blocker
        assert await asyncio.to_thread(old.entered.wait, 10)
        current[0] = FakeServed(new, "v2")
        (later,) = await submit(scheduler, [words(4, "later")])
        gate.set()
        return await asyncio.gather(*inflight), await later

    (a, b), c = run(scenario())
    assert len(old.passes) >= 3  # the plug, then the round's passes past the swap
    for result in (a, b):
        assert result.model.version == "v1"
        assert set(result.output.probs[:, 1].tolist()) == {1.0}
    assert c.model.version == "v2"
    assert c.output.probs[0, 1] == 2.0
    assert not new.seen() & set(first + second)
    assert "later later later later" in new.encoded  # re-tokenised by the model serving it


def test_close_answers_queued_requests_and_refuses_new_ones(build) -> None:
    scheduler, model, recorder, _ = build()

    async def scenario() -> None:
        blocker, gate = await plug(scheduler, model)
        (queued,) = await submit(scheduler, [words(2, "queued")])
        closing = asyncio.create_task(asyncio.to_thread(scheduler.close, 10))
        with pytest.raises(SchedulerClosed):
            await queued
        gate.set()
        await closing
        assert (await blocker).model.version == "v1"  # the running round finished
        with pytest.raises(SchedulerClosed):
            await scheduler.classify(["too late"])

    run(scenario())
    assert "queued queued" not in model.seen()
    assert ("closed", 1) in recorder.refusals


# -- the pure pieces --------------------------------------------------------------------


def test_plan_round_covers_every_text_once_in_length_order() -> None:
    rng = np.random.default_rng(1)
    lengths = [rng.integers(1, 60, size=int(k)) for k in rng.integers(1, 9, size=10)]
    plan = plan_round(lengths, max_batch_size=5, max_batch_tokens=120, overhead=20)
    seen = sorted((int(r), int(i)) for p in plan for r, i in zip(p.requests, p.items, strict=True))
    assert seen == sorted((r, i) for r, x in enumerate(lengths) for i in range(len(x)))
    flat = np.concatenate([p.lengths for p in plan])
    assert (np.diff(flat) >= 0).all()
    assert all(
        len(p.lengths) <= 5 and (p.padded_tokens <= 120 or len(p.lengths) == 1) for p in plan
    )
    assert isinstance(plan[0], PlannedPass)


def _request(texts: int, tokens: int) -> Request:
    loop = asyncio.new_event_loop()
    request = Request([""] * texts, tokens, 0.0, 10.0, loop.create_future(), loop)
    loop.close()
    return request


def test_admission_and_retry_after_from_the_counts() -> None:
    config = SchedulerConfig(
        latency_budget_s=1.25, headroom=0.8, max_held_texts=10, tokens_per_s=100.0
    )
    queue = WorkQueue(config)
    assert queue.refusal(1, 10_000) is None  # nothing queued: always admitted
    queue.push(_request(1, 80))
    assert queue.refusal(1, 20) is None  # 100 tokens at 100/s: 1 s, 80% of the budget
    assert queue.refusal(1, 21) == "over_budget"
    assert queue.refusal(10, 1) == "queue_full"
    assert queue.retry_after_s() == 1
    queue.push(_request(1, 10_000))
    assert queue.retry_after_s() == 60  # capped


def test_throughput_moves_with_full_rounds_not_with_lone_texts() -> None:
    rate = Throughput(1000.0)
    rate.update(tokens=10, seconds=0.1, fullness=1 / 64)  # a lone text at 100 tokens/s
    assert rate.tokens_per_s is not None
    assert rate.tokens_per_s == pytest.approx(1000 + 0.2 / 64 * (100 - 1000))  # ~997
    before = rate.tokens_per_s
    rate.update(tokens=2000, seconds=1.0, fullness=1.0)  # a full round at 2000 tokens/s
    assert rate.tokens_per_s == pytest.approx(before + 0.2 * (2000 - before))


# -- the real tiny model ----------------------------------------------------------------


@dataclass
class Served:
    classifier: TorchBackend
    version: str = "tiny"


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Equality, not speed, is checked: two threads only contend on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tiny_base_model: Path) -> TorchBackend:
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_base_model, num_labels=3)
    with torch.no_grad():  # spread the scores, as tests/test_inference.py does
        model.bert.pooler.dense.weight.mul_(20)
        model.classifier.weight.mul_(50)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    return TorchBackend(
        model, TextEncoder(tokenizer, 32), device=torch.device("cpu"), capture_embeddings=True
    )


REAL_TEXTS = [
    "refund my money please",
    "my parcel has not arrived and the tracking page has said in transit for nine days now",
    "hi",
    "\u2603 snowmen \u2603",
    "why was I charged twice this month? " * 6,
    "cancel",
]


@pytest.mark.usefixtures("one_thread")
def test_results_through_the_scheduler_equal_predict(tiny: TorchBackend) -> None:
    served = Served(tiny)
    config = SchedulerConfig(max_batch_size=4, max_batch_tokens=64)
    scheduler: Scheduler[Served, Classified[Served]] = Scheduler(
        lambda: served, config, finish=list
    )
    scheduler.start()  # measures the throughput: no seed given
    assert scheduler.tokens_per_s is not None
    assert scheduler.tokens_per_s > 0
    requests = [REAL_TEXTS, REAL_TEXTS[:2], [REAL_TEXTS[4]], REAL_TEXTS[::-1] * 2]

    async def scenario():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(scheduler.classify(texts) for texts in requests))

    try:
        results = run(scenario())
    finally:
        scheduler.close()
    assert len(results[3].passes) > 1  # 12 texts: more than one pass
    for texts, result in zip(requests, results, strict=True):
        expected, got = tiny.predict(texts), result.output
        assert result.model is served
        np.testing.assert_allclose(got.probs, expected.probs, atol=1e-5)
        assert got.embeddings is not None
        assert expected.embeddings is not None
        np.testing.assert_allclose(got.embeddings, expected.embeddings, atol=2e-3)
        for name in ("n_tokens", "truncated", "unknown_tokens"):
            assert np.array_equal(getattr(got, name), getattr(expected, name)), name
