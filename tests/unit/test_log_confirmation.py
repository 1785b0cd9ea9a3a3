"""What a /classify response says when its predictions are not on record in time, in
each REFIT_LOG_CONFIRM_MODE, and what /readyz says while the prediction log fails."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message
from tiny_versions import register_tiny_versions

from refit.core.errors import RefitError
from refit.core.registry import Registry
from refit.monitoring.prediction_log import PredictionLog
from refit.service.http.errors import error_response
from refit.service.model.predictor import ServedModel
from refit.service.model.readiness import ReadinessDetails
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.scheduling.log_confirmation import LogConfirmation
from refit.service.settings import Settings

LABELS = ["billing", "shipping"]


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class _Outage:
    """Stands in for the store's insert: the database cannot be reached."""

    def __call__(self, rows: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, ConnectionError("connection refused"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_base_model: Path) -> ServedModel:
    """One tiny model, loaded once, for every handler of the module."""
    state = tmp_path_factory.mktemp("confirm") / "state"
    registry = Registry(f"confirm-{state.parent.name[-8:]}", state)
    (version,) = register_tiny_versions(registry, tiny_base_model, LABELS, 1)
    return ServedModel.load(version, Settings(state_dir=state, device="cpu"))


@pytest.fixture
def make_handler(
    served: ServedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., ClassifyHandler]]:
    """`make_handler(mode, failing)`: a handler whose log confirms in 0.2 s or never."""
    made: list[ClassifyHandler] = []

    def make(mode: str, *, failing: bool, batching: str = "scheduler") -> ClassifyHandler:
        settings = Settings(
            state_dir=tmp_path / "state",
            device="cpu",
            log_confirm_mode=mode,
            log_confirm_timeout_s=0.2,
            batching=batching,
        )
        log = PredictionLog(f"sqlite:///{tmp_path / f'log-{len(made)}.sqlite3'}")
        log.start()
        if failing:
            monkeypatch.setattr(log._store, "insert", _Outage())
        handler = ClassifyHandler(served, settings, log)
        if batching == "scheduler":
            handler.start_scheduler()
        made.append(handler)
        return handler

    yield make
    for handler in made:
        handler.close()
        assert handler.log is not None
        handler.log.close(timeout=1)


def _app(handler: ClassifyHandler) -> ASGIApp:
    """/classify as the service wires it: the handler behind LogConfirmation; a sync
    handler in a worker thread, as BentoML runs a sync API method."""

    async def endpoint(request: Request) -> Response:
        texts = (await request.json())["texts"]
        try:
            if handler.scheduler is not None:
                return JSONResponse(await handler.classify(texts))
            return JSONResponse(await asyncio.to_thread(handler.classify_now, texts))
        except RefitError as exc:  # as service.http.errors.http_errors answers it
            return error_response(exc)

    app = Starlette(routes=[Route("/classify", endpoint, methods=["POST"])])
    return LogConfirmation(app, path="/classify")


def _post(handler: ClassifyHandler) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app(handler))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/classify", json={"texts": ["where is my parcel"]})

    return asyncio.run(go())


@pytest.mark.parametrize("batching", ["scheduler", "off"])
def test_flag_answers_and_marks_each_unconfirmed_response(
    make_handler: Callable[..., ClassifyHandler], batching: str
) -> None:
    handler = make_handler("flag", failing=True, batching=batching)
    before = _counter("refit_prediction_log_unconfirmed_responses_total")
    response = _post(handler)
    assert response.status_code == 200
    assert response.json()[0]["label"] in LABELS
    assert response.headers["x-refit-log"] == "unconfirmed"
    assert _counter("refit_prediction_log_unconfirmed_responses_total") == before + 1
    state = handler.log_readiness()
    assert state["degraded"] is True
    assert state["prediction_log"]["state"] == "failing"
    assert "ready" not in state  # still ready: answers go out, marked


def test_strict_refuses_with_503_and_retry_after(
    make_handler: Callable[..., ClassifyHandler],
) -> None:
    handler = make_handler("strict", failing=True, batching="off")
    refused = _counter("refit_prediction_log_refused_responses_total")
    unconfirmed = _counter("refit_prediction_log_unconfirmed_responses_total")
    response = _post(handler)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "REFIT_LOG_CONFIRM_MODE=strict" in response.json()["error"]
    assert response.headers["x-refit-log"] == "unconfirmed"
    assert _counter("refit_prediction_log_refused_responses_total") == refused + 1
    assert _counter("refit_prediction_log_unconfirmed_responses_total") == unconfirmed
    assert handler.log_readiness()["ready"] is False


@pytest.mark.parametrize("mode", ["flag", "strict"])
def test_a_confirmed_response_carries_no_mark(
    make_handler: Callable[..., ClassifyHandler], mode: str
) -> None:
    handler = make_handler(mode, failing=False, batching="off")
    response = _post(handler)
    assert response.status_code == 200
    assert "x-refit-log" not in response.headers
    assert handler.log_readiness() == {"degraded": False, "prediction_log": {"state": "ok"}}


def _readyz(state: dict[str, Any], bentoml_status: int = 200) -> tuple[int, dict[str, Any]]:
    async def bentoml_readyz(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": bentoml_status, "headers": []})
        await send({"type": "http.response.body", "body": b"\n"})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("a GET /readyz has no body to read")

    scope = {"type": "http", "path": "/readyz", "method": "GET"}
    asyncio.run(ReadinessDetails(bentoml_readyz, state=lambda: state)(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_readyz_turns_503_only_when_the_state_says_not_ready() -> None:
    failing = {"state": "failing", "failing_for_s": 3.0, "error": "OperationalError"}
    status, body = _readyz({"serving": "m:1", "degraded": True, "prediction_log": failing})
    assert status == 200
    assert body == {"ready": True, "serving": "m:1", "degraded": True, "prediction_log": failing}
    status, body = _readyz({"degraded": True, "prediction_log": failing, "ready": False})
    assert status == 503
    assert body["ready"] is False
    assert body["prediction_log"] == failing
    status, body = _readyz({"degraded": False}, bentoml_status=503)  # BentoML's no stays no
    assert status == 503
    assert body["ready"] is False
