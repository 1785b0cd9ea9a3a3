"""refit's own /classify route: plainly valid requests straight to the scheduler, every
other request on to BentoML with its body intact."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from refit.core.errors import Overloaded
from refit.service.http.classify_route import ClassifyRoute
from refit.service.schemas import plain_texts_reader
from refit.service.settings import ServingSettings

PLAIN_TEXTS = plain_texts_reader(ServingSettings(max_texts_per_request=3, max_text_chars=5))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"texts": ["a", "bc"]}', ["a", "bc"]),
        (b'{"texts": ["\\u00e9t\\u00e9"]}', ["été"]),
        (b'{"texts": []}', None),  # too few
        (b'{"texts": ["a", "b", "c", "d"]}', None),  # too many (limit 3)
        (b'{"texts": [""]}', None),  # empty text
        (b'{"texts": ["abcdef"]}', None),  # longer than 5 characters
        (b'{"texts": [1]}', None),
        (b'{"texts": "a"}', None),
        (b'{"texts": ["a"], "more": 1}', None),
        (b'["a"]', None),
        (b'{"texts": ["a"', None),  # malformed
        (b"", None),
    ],
)
def test_only_plainly_valid_bodies_are_taken(body: bytes, expected: list[str] | None) -> None:
    assert PLAIN_TEXTS(body) == expected


class Handler:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.seen: list[Sequence[str]] = []

    async def classify(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        self.seen.append(texts)
        if self.error is not None:
            raise self.error
        return [{"id": str(i), "label": "a", "score": 0.5} for i, _ in enumerate(texts)]


def _call(route: ClassifyRoute, body: bytes, path: str = "/classify") -> tuple[int, bytes]:
    sent: list[Message] = []
    messages = [{"type": "http.request", "body": body[:3], "more_body": True},
                {"type": "http.request", "body": body[3:], "more_body": False}]  # fmt: skip

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(route(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def bentoml(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands in for BentoML: echoes the body it got, as a 400."""
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message["body"], message["more_body"]
    await send({"type": "http.response.start", "status": 400, "headers": []})
    await send({"type": "http.response.body", "body": b"bentoml:" + body})


def _route(handler: Handler | None) -> ClassifyRoute:
    return ClassifyRoute(
        bentoml, path="/classify", handler=lambda: handler, plain_texts=PLAIN_TEXTS
    )


def test_a_valid_request_is_answered_by_the_scheduler_as_json() -> None:
    handler = Handler()
    status, body = _call(_route(handler), b'{"texts": ["a", "b"]}')
    assert status == 200
    assert json.loads(body) == [
        {"id": "0", "label": "a", "score": 0.5},
        {"id": "1", "label": "a", "score": 0.5},
    ]
    assert handler.seen == [["a", "b"]]


@pytest.mark.parametrize("body", [b'{"texts": []}', b'{"texts": ["abcdefgh"]}', b"{oops"])
def test_anything_else_reaches_bentoml_with_its_whole_body(body: bytes) -> None:
    handler = Handler()
    status, answer = _call(_route(handler), body)
    assert (status, answer) == (400, b"bentoml:" + body)
    assert handler.seen == []


def test_refit_errors_keep_their_status_and_retry_after() -> None:
    status, body = _call(_route(Handler(Overloaded(3, "over_budget"))), b'{"texts": ["a"]}')
    assert status == 429
    assert json.loads(body)["retry_after_s"] == 3


def test_without_a_scheduler_or_on_other_paths_it_stays_out_of_the_way() -> None:
    assert _call(_route(None), b'{"texts": ["a"]}') == (400, b'bentoml:{"texts": ["a"]}')
    status, _ = _call(_route(Handler()), b'{"texts": ["a"]}', path="/feedback")
    assert status == 400
