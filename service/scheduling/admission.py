"""The front door: refuse a classification request before BentoML reads or parses it.

Past saturation each worker's event loop is the bottleneck, not the model: in
`bench/serve_bench.py` at 8x saturation each worker read, validated, tokenised and
refused about 1,100 requests/s, so refusals waited in the socket backlog for
seconds before refit's code saw them. While the scheduler would refuse any request
(`Scheduler.refuse_if_full`), this middleware answers the 429 from the request head
alone, with the same body and `Retry-After` the handler gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from refit.core.errors import Overloaded
from refit.service.http.errors import error_response


class Admits(Protocol):
    def refuse_if_full(self) -> None: ...


class FrontDoor:
    def __init__(self, app: ASGIApp, *, path: str, scheduler: Callable[[], Admits | None]) -> None:
        self.app = app
        self.path = path
        self.scheduler = scheduler  # this worker's, once its service instance exists

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self.path and scope["method"] == "POST":
            scheduler = self.scheduler()
            if scheduler is not None:
                try:
                    scheduler.refuse_if_full()
                except Overloaded as exc:  # counted and logged by the scheduler
                    await error_response(exc)(scope, receive, send)
                    return
        await self.app(scope, receive, send)
