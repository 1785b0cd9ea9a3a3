"""The front door answers 429 from the request head while the scheduler is full."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from refit.core.errors import Overloaded
from refit.service.scheduling.admission import FrontDoor


class Switch:
    def __init__(self) -> None:
        self.full = False
        self.asked = 0

    def refuse_if_full(self) -> None:
        self.asked += 1
        if self.full:
            raise Overloaded(7, "queue_full")


def _app(scheduler: Switch | None, reads: list[bytes]) -> FrontDoor:
    async def classify(request: Request) -> JSONResponse:
        reads.append(await request.body())
        return JSONResponse([{"label": "ok"}])

    inner = Starlette(routes=[Route("/classify", classify, methods=["POST", "GET"])])
    return FrontDoor(inner, path="/classify", scheduler=lambda: scheduler)


async def _post(app: FrontDoor, method: str = "POST") -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, "/classify", json={"texts": ["hello"]})


@pytest.mark.anyio
async def test_a_full_scheduler_is_answered_429_without_reading_the_body() -> None:
    switch = Switch()
    reads: list[bytes] = []
    switch.full = True
    response = await _post(_app(switch, reads))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    body = response.json()
    assert body["retry_after_s"] == 7
    assert "queue_full" in body["error"]
    assert reads == []


@pytest.mark.anyio
async def test_with_room_the_request_goes_through_untouched() -> None:
    switch = Switch()
    reads: list[bytes] = []
    response = await _post(_app(switch, reads))
    assert response.status_code == 200
    assert json.loads(reads[0]) == {"texts": ["hello"]}
    assert switch.asked == 1


@pytest.mark.anyio
@pytest.mark.parametrize("scheduler", [None, "get"])
async def test_no_scheduler_yet_or_another_method_passes(scheduler: str | None) -> None:
    switch = Switch()
    reads: list[bytes] = []
    switch.full = True
    app = _app(None if scheduler is None else switch, reads)
    response = await _post(app, method="POST" if scheduler is None else "GET")
    assert response.status_code == 200
    assert switch.asked == 0
