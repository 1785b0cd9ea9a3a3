"""Per-request accounting around the API: how long each request took, and why it failed.

An ASGI middleware, so that it sees every request to the API endpoints whatever
answered it: refit's handlers, BentoML's validation (400), its timeout (504) or
its batcher's shedding (503). A failure is counted under the reason its status
stands for (`core.errors.reason_for_status`, the one mapping), which is the
reason the refit error that produced it carries.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refit.core.errors import reason_for_status
from refit.monitoring import prometheus_metrics as metrics


def count_head_refusal(reason: str) -> None:
    """A request head refused as it arrived (`core.compat.uvicorn`): counted apart, since
    it never reaches a route, and by why (414 for the URL, 431 for headers)."""
    metrics.HEAD_REFUSALS.labels(reason).inc()


class RequestAccounting:
    def __init__(self, app: ASGIApp, *, endpoints: frozenset[str]) -> None:
        self.app = app
        self.endpoints = endpoints  # timed and counted; other paths pass untouched
        # Each endpoint's series looked up once, not on every request.
        self._seconds = {path: metrics.REQUEST_SECONDS.labels(path) for path in endpoints}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in self.endpoints:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes before a response is a server fault

        async def accounted_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, accounted_send)
        finally:
            self._seconds[path].observe(time.perf_counter() - started)
            reason = reason_for_status(status)
            if reason is not None:
                metrics.ERRORS.labels(path, reason).inc()
