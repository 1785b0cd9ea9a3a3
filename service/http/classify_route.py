"""POST /classify answered by refit itself, in front of BentoML's API machinery.

For a request that is plainly valid (a JSON object whose only key is `texts`, a list of
1 to REFIT_MAX_TEXTS_PER_REQUEST strings of 1 to REFIT_MAX_TEXT_CHARS characters, as the
request schema checks it), this middleware parses the body, hands the texts to the
worker's scheduler and writes the JSON answer itself. BentoML would route the request,
build a pydantic model of its body, bind and call the API method, validate the returned
objects against the response model and serialise them again: per request that cost
more than a forward pass of a small model (the tiny-model proxy of
`bench/serve_bench.py`), which is what a GPU leaves exposed. Here the body is read by
one strict pydantic model in Rust, and the answer written by pydantic-core's JSON
writer.

Anything else (malformed JSON, other keys, a limit broken) passes on to BentoML
unchanged, with its body, so that every 4xx keeps the one wording and the OpenAPI
document keeps describing the route: the fast path only ever answers what BentoML
would have answered 200, or an error of refit's own hierarchy.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import pydantic_core
from starlette.types import ASGIApp, Receive, Scope, Send

from refit.core.errors import RefitError
from refit.service.http.body_limits import replay_body
from refit.service.http.errors import logged_error_response

logger = logging.getLogger(__name__)
JSON_HEADERS = [(b"content-type", b"application/json")]


class Classifies(Protocol):
    def classify(self, texts: Sequence[str]) -> Awaitable[list[dict[str, Any]]]: ...


class ClassifyRoute:
    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        handler: Callable[[], Classifies | None],
        plain_texts: Callable[[bytes], list[str] | None],
    ) -> None:
        self.app, self.path, self.handler = app, path, handler
        # The request schema's own check (`service.schemas.plain_texts_reader`).
        self.plain_texts = plain_texts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handler() if self._applies(scope) else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        body = await _whole_body(receive)
        texts = self.plain_texts(body)
        if texts is None:  # BentoML answers it, with the one wording of every 4xx
            await self.app(scope, replay_body(body, receive), send)
            return
        try:
            results = await handler.classify(texts)
        except RefitError as exc:
            await logged_error_response(exc, logger, "classify")(scope, receive, send)
            return
        await _send_json(send, pydantic_core.to_json(results))

    def _applies(self, scope: Scope) -> bool:
        return bool(
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path
        )


async def _whole_body(receive: Receive) -> bytes:
    # The body limits in front of this (service.http.body_limits) have read and bounded
    # it already, and hand it on in one message.
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, payload: bytes) -> None:
    headers = [*JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
