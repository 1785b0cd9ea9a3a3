"""BentoML's response deadline, without the timer it leaves behind per request.

BentoML (1.4.40) answers 504 when a response has not started within its traffic
timeout (`REFIT_REQUEST_TIMEOUT_S`, 60 s). Its middleware arms a timer for every
request and never cancels it, and runs the app in a task of its own. Each timer
lives out its 60 s holding the request's context, and with it the request's tracing
span: on the tiny model at about 440 requests/s, 9,300 timers were pending after
20 s and 588,000 live objects had become 765,000. Python's full garbage
collections, which walk every live object with the GIL held (one every 3 s there),
grew from 0.36 s to 0.51 s in 21 s, stalling the event loop and the model thread
alike. This middleware keeps BentoML's behaviour (the deadline ends when the
response starts) in the request's own task, with a timer it cancels. BentoML builds
its app with whatever class its module holds under the name when a worker assembles
its middlewares, so installing means replacing that name.
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive, Scope, Send

from refit.core.compat.bentoml import TimeoutMiddleware, use_timeout_middleware
from refit.core.errors import ResponseTimeout
from refit.service.http.errors import error_response


class ResponseDeadline(TimeoutMiddleware):
    """A 504 unless the response starts within `timeout` seconds."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def started_send(message: Message) -> None:
            nonlocal started
            if not started:
                started = True
                deadline.reschedule(None)  # a started response may take its time
            await send(message)

        try:
            async with asyncio.timeout(self.timeout) as deadline:
                await self.app(scope, receive, started_send)
            return
        except TimeoutError:
            if started or not deadline.expired():
                raise  # the app's own timeout, or one after the response began
        late = ResponseTimeout(f"not answered within {self.timeout:g} s (REFIT_REQUEST_TIMEOUT_S)")
        await error_response(late)(scope, receive, send)


def install_response_deadline() -> None:
    """Make BentoML build its app with `ResponseDeadline` (idempotent)."""
    use_timeout_middleware(ResponseDeadline)
