"""Limits a request meets before any of it is parsed: size, type, and how slowly it comes.

BentoML reads a whole body into memory before it parses it: one 1 GB body pushed a
worker from 844 MB to 3.9 GB before the 400 came. This ASGI middleware, in front
of the API routes that take a body, refuses
- a body declared (Content-Length) or found, while it streams in, larger than
  `REFIT_MAX_REQUEST_BYTES`: 413, without buffering more than that;
- a body that is not JSON (`Content-Type` other than application/json, including a
  malformed multipart type that used to reach BentoML's parser and end as a 500): 415;
- more than one `Content-Type` header: 400. refit would check one and BentoML parse
  the other (multipart then JSON ended as a 500 counted as a model error), and HTTP
  allows one only;
- a body still incomplete `REFIT_REQUEST_READ_TIMEOUT_S` after the request began: 408.
Every refusal is a `RefitError` answered by `service.http.errors.error_response`, so its
status and the reason it is counted under come from the one error hierarchy.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from refit.core.errors import (
    MalformedRequest,
    RefitError,
    RequestTimeout,
    RequestTooLarge,
    UnsupportedMediaType,
)
from refit.service.http.errors import error_response
from refit.service.settings import ServingSettings

JSON_TYPES = (b"application/json",)


class BodyLimits:
    def __init__(self, app: ASGIApp, *, paths: frozenset[str], serving: ServingSettings) -> None:
        self.app = app
        self.paths = paths  # routes whose POST bodies are checked
        self.max_bytes = serving.resolved_max_request_bytes()
        self.read_timeout_s = serving.request_read_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        if scope.get("path", "") not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            self._check_head(scope.get("headers", []))
            body = await self._read(receive)
        except RefitError as exc:
            # The body was not read to its end: the connection cannot carry another request.
            response = error_response(exc)
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, replay_body(body, receive), send)

    def _check_head(self, raw: list[tuple[bytes, bytes]]) -> None:
        types = [value for name, value in raw if name == b"content-type"]
        if len(types) > 1:
            raise MalformedRequest(
                f"{len(types)} Content-Type headers; send one: Content-Type: application/json"
            )
        headers = dict(raw)
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media_type not in JSON_TYPES:
            shown = media_type.decode("latin-1")[:100] or "none"
            raise UnsupportedMediaType(
                f"Content-Type must be application/json, not {shown}; send the body as JSON"
            )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise RequestTooLarge(self._too_large(int(declared)))

    async def _read(self, receive: Receive) -> bytes:
        try:
            # One timer over the whole body, in this task: `asyncio.wait_for` on each
            # message would wrap every receive() in a task of its own, on every request.
            async with asyncio.timeout(self.read_timeout_s):
                return await self._read_all(receive)
        except TimeoutError:
            raise RequestTimeout(
                f"the request body was not complete within {self.read_timeout_s:g} s "
                "(REFIT_REQUEST_READ_TIMEOUT_S)"
            ) from None

    async def _read_all(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RequestTimeout("the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise RequestTooLarge(self._too_large(size, at_least=True))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, size: int, *, at_least: bool = False) -> str:
        amount = f"at least {size}" if at_least else str(size)
        return (
            f"body: {amount} bytes is over the limit of {self.max_bytes} bytes "
            "(REFIT_MAX_REQUEST_BYTES); send fewer or shorter texts per request"
        )


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then defers to the client's."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
