"""ASGI middleware that lets the wrapped app answer, then sends a rewritten answer.

A subclass picks the requests (`applies`) and the responses (`rewrites`) it takes
over; the response's start message and whole body are buffered and handed to
`rewrite`, whose result is sent with its content-length set to the new body's.
Everything else passes through untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ResponseRewrite:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def applies(self, scope: Scope) -> bool:
        """Whether this HTTP request's response may be rewritten."""
        return True

    def rewrites(self, start: Message) -> bool:
        """Whether to take over the response that begins with `start`."""
        return True

    def rewrite(self, start: Message, body: bytes) -> tuple[Message, bytes]:
        """The start message and body to send instead of `start` and `body`."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies(scope):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and self.rewrites(message):
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_whole(*self.rewrite(start, b"".join(chunks)), send)

        await self.app(scope, receive, capture)


async def _send_whole(start: Message, body: bytes, send: Send) -> None:
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
