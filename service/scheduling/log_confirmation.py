"""The `X-Refit-Log: unconfirmed` header on a /classify response whose predictions were
not confirmed written to the prediction log before it went out.

The handler decides (`ClassifyHandler`), deep inside the request; the response is built
by BentoML, which takes headers from an API method only through its `Context` argument,
and then also takes the status from it, overwriting the status of refit's error
responses. So this middleware hands each request a mutable flag through a context
variable, the handler raises it (`mark_unconfirmed`), and the middleware adds the
header when the response starts. A context variable reaches the handler in the
request's task and, copied, in the thread BentoML runs a sync API method in; the flag
it holds is the same object in both.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER: Final = b"x-refit-log"
UNCONFIRMED: Final = b"unconfirmed"


class _Flag:
    __slots__ = ("raised",)

    def __init__(self) -> None:
        self.raised = False


_current: ContextVar[_Flag | None] = ContextVar("refit_log_unconfirmed", default=None)


def mark_unconfirmed() -> None:
    """Say on this request's response that its predictions are not confirmed on record
    (nothing outside a request the middleware wraps)."""
    flag = _current.get()
    if flag is not None:
        flag.raised = True


class LogConfirmation:
    """ASGI middleware: the header on responses of `path` whose request was marked."""

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.path:
            await self.app(scope, receive, send)
            return
        flag = _Flag()
        token = _current.set(flag)

        async def flagged_send(message: Message) -> None:
            if flag.raised and message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (HEADER, UNCONFIRMED)]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, flagged_send)
        finally:
            _current.reset(token)
