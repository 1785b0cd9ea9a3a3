"""Limits a request meets before it is parsed, and what the API documents, with stand-ins."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.types import Message

from refit.service.http.body_limits import BodyLimits
from refit.service.http.bounded_paths import UNKNOWN, RestorePath, route_label
from refit.service.http.openapi_doc import truthful
from refit.service.settings import ServingSettings

JSON = (b"content-type", b"application/json")


class _Echo:
    """Answers 200 with the body it read; records whether it was called."""

    def __init__(self) -> None:
        self.called = False

    async def __call__(self, scope, receive, send) -> None:
        self.called = True
        message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": message["body"]})


def _limits(app: _Echo, **serving: Any) -> BodyLimits:
    settings = ServingSettings(max_request_bytes=2048, request_read_timeout_s=0.2, **serving)
    return BodyLimits(app, paths=frozenset({"/classify"}), serving=settings)


async def _send(
    app: BodyLimits,
    headers: list[tuple[bytes, bytes]],
    chunks: list[bytes],
    *,
    path: str = "/classify",
    pause_s: float = 0.0,
) -> tuple[int, dict[bytes, bytes], bytes, int]:
    sent: list[Message] = []
    remaining = list(chunks)
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        if pause_s and reads > 1:
            await asyncio.sleep(pause_s)
        if not remaining:
            return {"type": "http.disconnect"}
        body = remaining.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(remaining)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": path, "headers": headers}
    await app(scope, receive, send)
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"], reads


def test_a_declared_oversize_body_is_refused_before_it_is_read() -> None:
    inner = _Echo()
    status, headers, body, reads = asyncio.run(
        _send(_limits(inner), [JSON, (b"content-length", b"1000000000")], [b"x"])
    )
    assert (status, reads, inner.called) == (413, 0, False)
    assert "REFIT_MAX_REQUEST_BYTES" in json.loads(body)["error"]
    assert headers[b"connection"] == b"close"


def test_a_streamed_body_is_cut_off_at_the_limit() -> None:
    inner = _Echo()
    chunks = [b"x" * 1000] * 50  # 50 kB, no length declared
    status, _, _, reads = asyncio.run(_send(_limits(inner), [JSON], chunks))
    assert status == 413
    assert reads == 3  # stopped reading as soon as 2048 bytes were passed
    assert not inner.called


@pytest.mark.parametrize(
    "content_type",
    [b"text/plain", b"multipart/form-data", b"multipart/form-data; boundary", b"", b"json"],
)
def test_only_json_is_accepted(content_type: bytes) -> None:
    inner = _Echo()
    headers = [(b"content-type", content_type)] if content_type else []
    status, _, body, _ = asyncio.run(_send(_limits(inner), headers, [b'{"texts": ["a"]}']))
    assert status == 415
    assert "application/json" in json.loads(body)["error"]
    assert not inner.called


@pytest.mark.parametrize(
    "types",
    [
        [b"multipart/form-data; boundary=x", b"application/json"],
        [b"application/json", b"multipart/form-data; boundary=x"],
        [b"application/json", b"application/json"],
    ],
)
def test_two_content_types_are_refused_whatever_their_order(types: list[bytes]) -> None:
    inner = _Echo()
    headers = [(b"content-type", value) for value in types]
    status, _, body, _ = asyncio.run(_send(_limits(inner), headers, [b'{"texts": ["a"]}']))
    assert status == 400
    assert "Content-Type" in json.loads(body)["error"]
    assert not inner.called


def test_a_half_sent_body_times_out() -> None:
    inner = _Echo()
    status, _, body, _ = asyncio.run(
        _send(_limits(inner), [JSON], [b'{"texts": ', b'["a"]}'], pause_s=1.0)
    )
    assert status == 408
    assert "REFIT_REQUEST_READ_TIMEOUT_S" in json.loads(body)["error"]


def test_a_good_body_reaches_the_app_whole_and_other_routes_pass_untouched() -> None:
    inner = _Echo()
    chunks = [b'{"texts": ', b'["hello"]}']
    status, _, body, _ = asyncio.run(
        _send(_limits(inner), [(b"content-type", b"application/json; charset=utf-8")], chunks)
    )
    assert (status, body) == (200, b'{"texts": ["hello"]}')
    status, _, _, _ = asyncio.run(
        _send(_limits(_Echo()), [(b"content-type", b"text/plain")], [b"x"], path="/other")
    )
    assert status == 200


def test_the_default_limit_fits_the_largest_valid_request() -> None:
    serving = ServingSettings()
    largest = json.dumps({"texts": ["\U0001f600" * serving.max_text_chars] * 64})
    assert len(largest.encode()) <= serving.resolved_max_request_bytes()


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/classify", "/classify"),
        ("/metrics", "/metrics"),
        ("/reports/drift-1.html", "/reports/{name}"),
        ("/wp-admin.php", UNKNOWN),
        ("/classify/", UNKNOWN),
        ("/" + "a" * 5000, UNKNOWN),
    ],
)
def test_requests_are_labelled_by_route(path: str, label: str) -> None:
    assert route_label(path) == label


def test_the_real_path_is_restored_for_routing_and_unknown_paths_get_a_json_404() -> None:
    seen: list[str] = []
    sent: list[Message] = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["path"])

    async def receive() -> Message:
        raise AssertionError("routing never reads the body")

    async def send(message: Message) -> None:
        sent.append(message)

    report = {"type": "http", "path": "/reports/{name}", "refit.path": "/reports/drift-1.html"}
    asyncio.run(RestorePath(app)(report, receive, send))
    asyncio.run(RestorePath(app)({"type": "http", "path": "/classify"}, receive, send))
    assert seen == ["/reports/drift-1.html", "/classify"]
    made_up = {"type": "http", "path": UNKNOWN, "refit.path": "/wp-admin.php"}
    asyncio.run(RestorePath(app)(made_up, receive, send))
    assert seen == ["/reports/drift-1.html", "/classify"]  # never reached the app
    assert sent[0]["status"] == 404
    assert "no such path" in json.loads(sent[1]["body"])["error"]


def test_the_openapi_document_lists_every_status_with_a_schema() -> None:
    spec: dict[str, Any] = {"paths": {"/classify": {"post": {"responses": {"200": {}}}}}}
    responses = truthful(spec)["paths"]["/classify"]["post"]["responses"]
    assert {"200", "400", "408", "413", "415", "429", "500", "503", "504"} <= set(responses)
    assert "Retry-After" in responses["429"]["headers"]
    detail = spec["components"]["schemas"]["InvalidRequest"]["properties"]["detail"]
    assert detail["type"] == "array"
