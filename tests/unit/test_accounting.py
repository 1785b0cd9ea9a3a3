"""Admission control and request accounting, with a stand-in ASGI app."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY

from core.errors import reason_for_status
from service import admission
from service.admission import RequestAccounting, WorkerState, note_arrival
from service.pipeline import arrival_times


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (200, None),
        (400, "validation"),
        (422, "validation"),
        (429, "overload"),
        (503, "overload"),
        (504, "timeout"),
        (500, "model"),
        (404, "other"),
    ],
)
def test_status_codes_map_to_error_reasons(status: int, reason: str | None) -> None:
    assert reason_for_status(status) == reason


def test_retry_after_follows_queued_work_and_capacity() -> None:
    state = WorkerState()
    assert state.retry_after() == 1  # nothing known yet
    state.batch_done(texts=100, seconds=1.0)
    state.in_flight_texts = 450
    assert state.retry_after() == 5
    state.in_flight_texts = 10**6
    assert state.retry_after() == 60


def test_arrival_stamps_survive_concatenation() -> None:
    first = note_arrival(["a", "b"])  # no request context: untouched
    assert type(first[0]) is str
    stamped = admission.ArrivedText("x")
    stamped.arrived = 1.0
    other = admission.ArrivedText("p")
    other.arrived = 3.0
    batch = [stamped, "y", "z", other, "q"]
    per_text, per_request = arrival_times(batch, now=10.0)
    assert per_text.tolist() == [1.0, 1.0, 1.0, 3.0, 3.0]
    assert per_request.tolist() == [1.0, 3.0]
    per_text, per_request = arrival_times(["plain"], now=10.0)
    assert per_text.tolist() == [10.0]
    assert per_request.tolist() == []


class _App:
    """Parses like BentoML would (running the validator), answers 200 or 400."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        message = await receive()
        texts = json.loads(message["body"])["texts"]
        if not texts:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        note_arrival(texts)
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})


async def _request(app, texts: list[str]) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict] = []
    body = json.dumps({"texts": texts}).encode()

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/classify", "method": "POST", "headers": []}
    await app(scope, receive, send)
    headers = dict(sent[0].get("headers", []))
    return sent[0]["status"], headers, sent[1]["body"]


def test_requests_past_the_in_flight_bound_get_429_with_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = WorkerState()
    state.batch_done(texts=10, seconds=1.0)
    monkeypatch.setattr(admission, "WORKER", state)
    inner = _App()
    app = RequestAccounting(
        inner,
        endpoints=frozenset({"/classify"}),
        admitted=frozenset({"/classify"}),
        durable=frozenset(),
        max_in_flight_texts=5,
        latency_budget_s=100.0,
    )
    overload_before = (
        REGISTRY.get_sample_value(
            "refit_request_errors_total", {"endpoint": "/classify", "reason": "overload"}
        )
        or 0.0
    )

    async def scenario() -> None:
        held = asyncio.create_task(_request(app, ["t"] * 6))
        await asyncio.sleep(0.01)
        assert state.in_flight_texts == 6
        status, headers, body = await _request(app, ["one more"])
        assert status == 429
        assert headers[b"retry-after"] == b"1"
        assert json.loads(body)["retry_after_s"] == 1
        inner.release.set()
        assert (await held)[0] == 200
        assert state.in_flight_texts == 0
        assert (await _request(app, ["fine now"]))[0] == 200
        assert (await _request(app, []))[0] == 400

    asyncio.run(scenario())
    overload_after = REGISTRY.get_sample_value(
        "refit_request_errors_total", {"endpoint": "/classify", "reason": "overload"}
    )
    assert overload_after - overload_before == 1


def test_refit_errors_map_to_statuses_through_the_hierarchy() -> None:
    from core.errors import (
        DataProblem,
        DataValidationError,
        ModelNotFoundError,
        PredictionLogUnavailable,
        RefitError,
    )
    from service.errors import error_response

    class Unlisted(ModelNotFoundError):
        pass

    assert DataValidationError([DataProblem("f", "bad")]).status == 422
    assert Unlisted("x").status == 404
    assert RefitError("x").status == 500
    response = error_response(PredictionLogUnavailable("the log is down"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert json.loads(response.body) == {"error": "the log is down"}


def test_requests_that_would_wait_past_the_budget_get_429(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = WorkerState()
    state.batch_done(texts=10, seconds=1.0)  # 10 texts/s
    monkeypatch.setattr(admission, "WORKER", state)
    inner = _App()
    app = RequestAccounting(
        inner,
        endpoints=frozenset({"/classify"}),
        admitted=frozenset({"/classify"}),
        durable=frozenset(),
        max_in_flight_texts=10_000,
        latency_budget_s=2.0,
    )

    async def scenario() -> None:
        held = asyncio.create_task(_request(app, ["t"] * 20))  # 2 s of work: at the budget
        await asyncio.sleep(0.01)
        also = asyncio.create_task(_request(app, ["u"]))  # admitted: not past the budget
        await asyncio.sleep(0.01)
        status, headers, _ = await _request(app, ["v"])  # 2.1 s queued: past it
        assert status == 429
        assert headers[b"retry-after"] == b"3"
        inner.release.set()
        assert (await held)[0] == 200
        assert (await also)[0] == 200

    asyncio.run(scenario())


def test_admin_token_check() -> None:
    from pydantic import SecretStr

    from core.errors import Forbidden, Unauthorized
    from service.admin import check_token

    secret = SecretStr("s3cret")
    check_token("Bearer s3cret", secret)
    check_token("bearer s3cret ", secret)
    with pytest.raises(Forbidden, match="disabled"):
        check_token("Bearer s3cret", None)
    with pytest.raises(Unauthorized):
        check_token(None, secret)
    with pytest.raises(Unauthorized):
        check_token("s3cret", secret)
    with pytest.raises(Forbidden, match="wrong"):
        check_token("Bearer s3cre", secret)
