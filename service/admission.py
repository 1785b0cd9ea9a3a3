"""Per-request accounting around the API: admission, latency, errors, durable logging.

`RequestAccounting` is an ASGI middleware. For each API request it
- refuses new work with 429 and `Retry-After` once the work the worker already
  holds would take longer than the latency budget to get through (or exceeds a
  hard cap of texts), instead of letting the batcher's queue grow until requests
  time out;
- times the request and counts failures by reason, mapping status codes to the
  reasons of `monitoring.prometheus_metrics.ERROR_REASONS` in one place;
- holds a successful /classify response until the prediction log has written
  what the batch produced, so every prediction a client received is on record
  even if the server is killed right after.

The validator `note_arrival` runs while pydantic parses the request, inside the
same request context: it learns how many texts the request holds and stamps the
first text with the arrival time, which survives BentoML's batching so that the
batch function can measure each request's queue wait.
"""

from __future__ import annotations

import math
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import Overloaded, reason_for_status
from monitoring import prometheus_metrics as metrics
from monitoring.prediction_log import PredictionLog
from service.errors import error_response


class ArrivedText(str):
    """A request's first text, carrying the time its request arrived."""

    arrived: float


@dataclass
class RequestState:
    arrived: float
    texts: int = 0


@dataclass
class WorkerState:
    """What one worker process knows about its own load."""

    in_flight_texts: int = 0
    texts_per_second: float = 0.0  # recent serving capacity, smoothed
    log: PredictionLog | None = None
    confirm_timeout_s: float = 2.0
    _smoothing: float = field(default=0.2, repr=False)

    def add_in_flight(self, n: int) -> None:
        self.in_flight_texts += n
        metrics.IN_FLIGHT_TEXTS.set(self.in_flight_texts)

    def batch_done(self, texts: int, seconds: float) -> None:
        if seconds > 0:
            rate = texts / seconds
            a = self._smoothing
            self.texts_per_second = (
                rate if not self.texts_per_second else (a * rate + (1 - a) * self.texts_per_second)
            )

    def queued_seconds(self) -> float:
        """How long the texts already accepted should take to serve; 0 while unknown."""
        if self.texts_per_second <= 0:
            return 0.0
        return self.in_flight_texts / self.texts_per_second

    def retry_after(self) -> int:
        """Seconds until the work already queued should be done, at least 1."""
        return max(1, min(60, math.ceil(self.queued_seconds())))


WORKER = WorkerState()
_CURRENT: ContextVar[RequestState | None] = ContextVar("refit_request", default=None)


def note_arrival(texts: list[str]) -> list[str]:
    """Pydantic after-validator of /classify's `texts`: count them, stamp the first."""
    request = _CURRENT.get()
    if request is None or not texts:
        return texts
    request.texts = len(texts)
    WORKER.add_in_flight(len(texts))
    first = ArrivedText(texts[0])
    first.arrived = request.arrived
    texts[0] = first
    return texts


class RequestAccounting:
    def __init__(
        self,
        app: ASGIApp,
        *,
        endpoints: frozenset[str],
        admitted: frozenset[str],
        max_in_flight_texts: int,
        latency_budget_s: float,
        durable: frozenset[str],
    ) -> None:
        self.app = app
        self.endpoints = endpoints  # timed and counted
        self.admitted = admitted  # subject to the admission bounds
        self.durable = durable  # responses held until their predictions are logged
        self.max_in_flight_texts = max_in_flight_texts
        self.latency_budget_s = latency_budget_s

    def full(self) -> bool:
        return (
            WORKER.in_flight_texts >= self.max_in_flight_texts
            or WORKER.queued_seconds() > self.latency_budget_s
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in self.endpoints:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        if path in self.admitted and self.full():
            metrics.ERRORS.labels(path, "overload").inc()
            await error_response(Overloaded(WORKER.retry_after()))(scope, receive, send)
            return
        request = RequestState(arrived=started)
        token = _CURRENT.set(request)
        status = 500
        log = WORKER.log if path in self.durable else None
        # Every batch holding this request's texts is numbered above this.
        floor = log.submitted_seq if log is not None else 0

        async def accounted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if log is not None and status < 300:
                    await _confirm_logged(log, floor)
            await send(message)

        try:
            await self.app(scope, receive, accounted_send)
        finally:
            _CURRENT.reset(token)
            if request.texts:
                WORKER.add_in_flight(-request.texts)
            metrics.REQUEST_SECONDS.labels(path).observe(time.perf_counter() - started)
            reason = reason_for_status(status)
            if reason is not None:
                metrics.ERRORS.labels(path, reason).inc()


async def _confirm_logged(log: PredictionLog, floor: int) -> None:
    """Wait until the batches of this request are written; count it if they were not.

    Batches numbered after `floor` up to the latest may belong to other requests;
    waiting for them too costs at most one more write, and a failure among them is
    counted as unconfirmed rather than risk answering for a record that is lost.
    """
    last = log.submitted_seq
    written = await log.wait_durable_async(last, WORKER.confirm_timeout_s)
    if not (written and log.all_durable(floor + 1, last)):
        metrics.LOG_UNCONFIRMED.inc()
