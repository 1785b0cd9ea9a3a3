"""A deadline for a request's head, which uvicorn does not have.

uvicorn (as BentoML 1.4.40 runs it, with the httptools protocol) arms its keep-alive
timer only after a response; a connection that sends half a request head and then
nothing is held forever (a probe kept 500 such sockets open). refit cannot reach
that point through ASGI, since the app is called only once the head is complete,
so this module gives uvicorn's protocol class a head deadline: the connection is
closed when the head of its next request is not complete within
`REFIT_REQUEST_READ_TIMEOUT_S` of the connection opening or of the previous
response. Bodies have their own deadline in `service.http_limits`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_TIMER = "_refit_head_timer"


def install_head_deadline(seconds: float) -> None:
    """Patch uvicorn's httptools protocol (idempotent; the last deadline wins)."""
    HttpToolsProtocol._refit_head_timeout = seconds  # type: ignore[attr-defined]
    if getattr(HttpToolsProtocol, "_refit_patched", False):
        return
    made, headers_done = HttpToolsProtocol.connection_made, HttpToolsProtocol.on_headers_complete
    response_done, lost = HttpToolsProtocol.on_response_complete, HttpToolsProtocol.connection_lost

    def connection_made(self: Any, transport: asyncio.Transport) -> None:
        made(self, transport)
        _arm(self)

    def on_headers_complete(self: Any) -> None:
        _disarm(self)
        headers_done(self)

    def on_response_complete(self: Any) -> None:
        response_done(self)
        if not self.transport.is_closing():
            _arm(self)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        _disarm(self)
        lost(self, exc)

    HttpToolsProtocol.connection_made = connection_made  # type: ignore[method-assign]
    HttpToolsProtocol.on_headers_complete = on_headers_complete  # type: ignore[method-assign]
    HttpToolsProtocol.on_response_complete = on_response_complete  # type: ignore[method-assign]
    HttpToolsProtocol.connection_lost = connection_lost  # type: ignore[method-assign]
    HttpToolsProtocol._refit_patched = True  # type: ignore[attr-defined]


def _arm(protocol: Any) -> None:
    _disarm(protocol)
    timer = protocol.loop.call_later(protocol._refit_head_timeout, _expire, protocol)
    setattr(protocol, _HEAD_TIMER, timer)


def _disarm(protocol: Any) -> None:
    timer = getattr(protocol, _HEAD_TIMER, None)
    if timer is not None:
        timer.cancel()
        setattr(protocol, _HEAD_TIMER, None)


def _expire(protocol: Any) -> None:
    # A request whose head completed has disarmed the timer; only an idle or
    # half-sent head reaches here.
    setattr(protocol, _HEAD_TIMER, None)
    if not protocol.transport.is_closing():
        protocol.transport.close()
