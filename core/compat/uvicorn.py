"""uvicorn's httptools protocol, patched with a deadline for a request's head.

For uvicorn 0.55.0 with httptools 0.9.0 (both pinned in pyproject.toml), as BentoML
1.4.40 runs it. uvicorn arms its keep-alive timer only after a response, so a
connection that sends half a request head and then nothing is held for ever (a probe
kept 500 such sockets open). The app is called only once the head is complete, so no
ASGI middleware can see this; the protocol class gets a head deadline instead: the
connection closes when the head of its next request is not complete within the
deadline from the connection opening or from the previous response.

uvicorn picks its HTTP protocol by what is installed (`http="auto"`): httptools, else
h11, which this patch would not reach. So the check at import fails where httptools
is missing or either version differs, rather than leaving the defence silently off.
"""

from __future__ import annotations

import asyncio
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final

WRITTEN_FOR: Final = {"uvicorn": "0.55.0", "httptools": "0.9.0"}


def _check_versions() -> None:
    for package, wanted in WRITTEN_FOR.items():
        try:
            found = version(package)
        except PackageNotFoundError:
            found = "not installed"
        if found != wanted:
            raise ImportError(
                f"refit's request-head deadline patches {package} {wanted} "
                f"(core/compat/uvicorn.py), but {package} is {found}; install "
                f"{package}=={wanted} (pyproject.toml pins it) or port the module"
            )


_check_versions()

from uvicorn.protocols.http.auto import AutoHTTPProtocol  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402

_HEAD_TIMER: Final = "_refit_head_timer"


def install_head_deadline(seconds: float) -> None:
    """Patch uvicorn's httptools protocol (idempotent; the last deadline wins)."""
    if AutoHTTPProtocol is not HttpToolsProtocol:
        raise RuntimeError(
            f"uvicorn serves HTTP with {AutoHTTPProtocol.__name__}, not httptools: the "
            "request-head deadline would do nothing (install httptools)"
        )
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
