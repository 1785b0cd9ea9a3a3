"""uvicorn's httptools protocol, patched to bound a request's head in time and in size.

For uvicorn 0.55.0 with httptools 0.9.0 (both pinned in pyproject.toml), as BentoML
1.4.40 runs it. The app is called only once a head is complete, so no ASGI middleware
can see either problem; the protocol class is patched instead.

- Time: uvicorn arms its keep-alive timer only after a response, so a connection that
  sends half a request head and then nothing is held for ever (a probe kept 500 such
  sockets open). The connection closes when the head of its next request is not
  complete within the deadline from the connection opening or the previous response.
- Size: uvicorn appends every piece of the URL to a bytes object, and httptools
  gathers a header line the same way before handing it over, with no limit: one
  connection sending 100 MiB of headers got a 200 after 3.7 s and raised a worker's
  memory by 250 MB. Bytes are handed to the parser only up to what the head may
  still hold; past it, or past a limit on the URL, one header line or the number of
  lines (checked in the parser's callbacks as the bytes arrive), the connection gets
  414 (URL) or 431 (headers) and is closed, having buffered no more than the limit.

uvicorn picks its HTTP protocol by what is installed (`http="auto"`): httptools, else
h11, which this patch would not reach. So the check at import fails where httptools
is missing or either version differs, rather than leaving the defences silently off.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import Callable
from dataclasses import dataclass
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
                f"refit's request-head limits patch {package} {wanted} "
                f"(core/compat/uvicorn.py), but {package} is {found}; install "
                f"{package}=={wanted} (pyproject.toml pins it) or port the module"
            )


_check_versions()

from uvicorn.protocols.http.auto import AutoHTTPProtocol  # noqa: E402
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: E402

_HEAD_TIMER: Final = "_refit_head_timer"
# Why a head was refused: the value of the counter's `reason` label, and the status.
HEAD_REFUSALS: Final = {"url": 414, "header_size": 431, "header_count": 431, "head_size": 431}


@dataclass(frozen=True)
class HeadLimits:
    """What a request head may take: time from the connection (or the last response) to
    its end, and bytes. `url_bytes` and `header_bytes` are at most `head_bytes`."""

    deadline_s: float
    url_bytes: int = 8192
    header_bytes: int = 8192
    header_count: int = 100
    head_bytes: int = 16384


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a head that broke a limit."""


def _count_nothing(reason: str) -> None:
    del reason


def install_head_limits(
    limits: HeadLimits, on_refusal: Callable[[str], None] = _count_nothing
) -> None:
    """Patch uvicorn's httptools protocol (idempotent; the last limits win).

    `on_refusal(reason)` is called once per refused head, `reason` a key of HEAD_REFUSALS.
    """
    if AutoHTTPProtocol is not HttpToolsProtocol:
        raise RuntimeError(
            f"uvicorn serves HTTP with {AutoHTTPProtocol.__name__}, not httptools: the "
            "request-head limits would do nothing (install httptools)"
        )
    HttpToolsProtocol._refit_limits = limits  # type: ignore[attr-defined]
    HttpToolsProtocol._refit_on_refusal = staticmethod(on_refusal)  # type: ignore[attr-defined]
    if not getattr(HttpToolsProtocol, "_refit_patched", False):
        _patch_deadline(HttpToolsProtocol)
        _patch_sizes(HttpToolsProtocol)
        _patch_callbacks(HttpToolsProtocol)
        HttpToolsProtocol._refit_patched = True  # type: ignore[attr-defined]


def _patch_deadline(cls: Any) -> None:
    made, headers_done = cls.connection_made, cls.on_headers_complete
    response_done, lost = cls.on_response_complete, cls.connection_lost

    def connection_made(self: Any, transport: asyncio.Transport) -> None:
        made(self, transport)
        _start_head(self)
        _arm(self)

    def on_headers_complete(self: Any) -> None:
        _disarm(self)
        self._refit_in_head = False
        headers_done(self)

    def on_response_complete(self: Any) -> None:
        response_done(self)
        if not self.transport.is_closing():
            _arm(self)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        _disarm(self)
        lost(self, exc)

    cls.connection_made = connection_made
    cls.on_headers_complete = on_headers_complete
    cls.on_response_complete = on_response_complete
    cls.connection_lost = connection_lost


def _patch_sizes(cls: Any) -> None:
    received, message_done = cls.data_received, cls.on_message_complete
    bad_request = cls.send_400_response

    def data_received(self: Any, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused: whatever else was read is never parsed
        room = self._refit_limits.head_bytes - self._refit_head_seen
        if not self._refit_in_head or len(data) <= room:
            self._refit_head_seen += len(data) if self._refit_in_head else 0
            received(self, data)
            return
        # Only what the head may still hold goes to the parser; if the head has not
        # ended within it, the rest is never buffered.
        self._refit_head_seen += room
        if room > 0:
            received(self, data[:room])
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # refused or failed on the way, or handed to a websocket protocol
        if self._refit_in_head:
            _refuse(self, "head_size")
            return
        received(self, data[room:])

    def on_message_complete(self: Any) -> None:
        message_done(self)
        _start_head(self)  # what follows on this connection is the next request's head

    def send_400_response(self: Any, msg: str) -> None:
        # uvicorn answers any parser error with 400; a callback's refusal is that error.
        if self._refit_refusal is None:
            bad_request(self, msg)
        else:
            _refuse(self, self._refit_refusal)

    cls.data_received = data_received
    cls.on_message_complete = on_message_complete
    cls.send_400_response = send_400_response


def _patch_callbacks(cls: Any) -> None:
    """The parser's callbacks, as bytes arrive: the URL's pieces, each complete header."""
    url_part, header = cls.on_url, cls.on_header

    def on_url(self: Any, url: bytes) -> None:
        self._refit_url_seen += len(url)
        if self._refit_url_seen > self._refit_limits.url_bytes:
            raise _Refused(_mark(self, "url"))
        url_part(self, url)

    def on_header(self: Any, name: bytes, value: bytes) -> None:
        self._refit_headers += 1
        if self._refit_headers > self._refit_limits.header_count:
            raise _Refused(_mark(self, "header_count"))
        if len(name) + len(value) > self._refit_limits.header_bytes:
            raise _Refused(_mark(self, "header_size"))
        header(self, name, value)

    cls.on_url = on_url
    cls.on_header = on_header


def _start_head(protocol: Any) -> None:
    protocol._refit_in_head = True
    protocol._refit_head_seen = protocol._refit_url_seen = protocol._refit_headers = 0
    protocol._refit_refusal = None


def _mark(protocol: Any, reason: str) -> str:
    protocol._refit_refusal = reason
    return reason


def _refuse(protocol: Any, reason: str) -> None:
    """Answer 414 or 431 and close: the rest of the head is never read."""
    limits: HeadLimits = protocol._refit_limits
    status = HEAD_REFUSALS[reason]
    message = {
        "url": f"the request URL is over {limits.url_bytes} bytes; send long input in the body",
        "header_size": f"a header line is over {limits.header_bytes} bytes",
        "header_count": f"the request has more than {limits.header_count} header lines",
        "head_size": f"the request head is over {limits.head_bytes} bytes",
    }[reason]
    body = json.dumps({"error": message}).encode()
    phrase = http.HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    protocol._refit_in_head = False
    _disarm(protocol)
    if not protocol.transport.is_closing():
        protocol.transport.write(head.encode() + body)
        protocol.transport.close()
    protocol._refit_on_refusal(reason)


def _arm(protocol: Any) -> None:
    _disarm(protocol)
    timer = protocol.loop.call_later(protocol._refit_limits.deadline_s, _expire, protocol)
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
