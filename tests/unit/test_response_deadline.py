"""A response that has not started in time gets refit's 504; its timer never outlives it."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import weakref

import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refit.core.compat.bentoml import TimeoutMiddleware
from refit.service.http.response_deadline import ResponseDeadline

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/classify", "headers": []}


async def _receive() -> Message:
    raise AssertionError("the apps here never read a body")


async def _call(app: TimeoutMiddleware) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(SCOPE, _receive, send)
    return sent


def _answer(delay_s: float, *, body_delay_s: float = 0.0) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(delay_s)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(body_delay_s)
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def test_a_late_response_gets_a_504_naming_the_setting() -> None:
    cancelled = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    sent = asyncio.run(_call(ResponseDeadline(slow, timeout=0.05)))
    assert sent[0]["status"] == 504
    assert "REFIT_REQUEST_TIMEOUT_S" in json.loads(sent[1]["body"])["error"]
    assert cancelled == [True]  # the work behind it stopped


def test_a_started_response_may_finish_after_the_deadline() -> None:
    app = ResponseDeadline(_answer(0.0, body_delay_s=0.2), timeout=0.05)
    sent = asyncio.run(_call(app))
    assert [m.get("status") for m in sent] == [200, None]
    assert sent[1]["body"] == b"ok"


def test_the_apps_own_timeout_is_not_turned_into_a_504() -> None:
    async def raises(scope: Scope, receive: Receive, send: Send) -> None:
        raise TimeoutError("the database did not answer")

    with pytest.raises(TimeoutError, match="database"):
        asyncio.run(_call(ResponseDeadline(raises, timeout=5)))


class Span:
    """Stands in for a request's tracing span, which an outer middleware puts in the
    request's context before this one runs."""


SPAN: contextvars.ContextVar[Span] = contextvars.ContextVar("span")


def _leftovers(middleware: type[TimeoutMiddleware]) -> tuple[int, int]:
    """(timers still pending, spans still alive) after 20 answered requests."""

    async def many() -> tuple[int, int]:
        app = middleware(_answer(0.0), timeout=60)
        spans = []
        for _ in range(20):
            span = Span()
            spans.append(weakref.ref(span))
            SPAN.set(span)
            await _call(app)
            del span
        SPAN.set(Span())
        gc.collect()  # while the loop, and so whatever it still schedules, is alive
        loop = asyncio.get_running_loop()
        pending = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
        return len(pending), sum(ref() is not None for ref in spans)

    return asyncio.run(many())


def test_no_timer_or_request_state_outlives_a_response() -> None:
    assert _leftovers(ResponseDeadline) == (0, 0)


def test_bentomls_middleware_keeps_both_for_its_whole_timeout() -> None:
    # Why ResponseDeadline exists; if BentoML cancels its timers one day, it can go.
    pending, alive = _leftovers(TimeoutMiddleware)
    assert pending == 20
    assert alive == 20
