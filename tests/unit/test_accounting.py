"""Request accounting, error statuses and the admin token, with a stand-in ASGI app."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import REGISTRY

from refit.core.errors import reason_for_status
from refit.service.http.accounting import RequestAccounting


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


class _App:
    """Parses like BentoML would, answers 200 or 400 (after `release`)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send) -> None:
        message = await receive()
        texts = json.loads(message["body"])["texts"]
        if not texts:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
            return
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


def _errors(reason: str) -> float:
    labels = {"endpoint": "/classify", "reason": reason}
    return REGISTRY.get_sample_value("refit_request_errors_total", labels) or 0.0


def test_requests_are_timed_and_failures_counted_by_reason() -> None:
    inner = _App()
    inner.release.set()
    app = RequestAccounting(inner, endpoints=frozenset({"/classify"}))
    before = {reason: _errors(reason) for reason in ("validation", "model")}
    timed = "refit_request_duration_seconds_count"
    count_before = REGISTRY.get_sample_value(timed, {"endpoint": "/classify"}) or 0.0

    async def scenario() -> None:
        assert (await _request(app, ["fine"]))[0] == 200
        assert (await _request(app, []))[0] == 400

    asyncio.run(scenario())
    assert _errors("validation") - before["validation"] == 1
    assert _errors("model") - before["model"] == 0
    count_after = REGISTRY.get_sample_value(timed, {"endpoint": "/classify"}) or 0.0
    assert count_after - count_before == 2


def test_an_exception_before_the_response_counts_as_a_model_failure() -> None:
    async def broken(scope, receive, send) -> None:
        raise RuntimeError("boom")

    app = RequestAccounting(broken, endpoints=frozenset({"/classify"}))
    before = _errors("model")
    with pytest.raises(RuntimeError):
        asyncio.run(_request(app, ["x"]))
    assert _errors("model") - before == 1


def test_refit_errors_map_to_statuses_through_the_hierarchy() -> None:
    from refit.core.errors import (
        DataProblem,
        DataValidationError,
        ModelNotFoundError,
        PredictionLogUnavailable,
        RefitError,
    )
    from refit.service.http.errors import error_response

    class Unlisted(ModelNotFoundError):
        pass

    assert DataValidationError([DataProblem("f", "bad")]).status == 422
    assert Unlisted("x").status == 404
    assert RefitError("x").status == 500
    response = error_response(PredictionLogUnavailable("the log is down"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert json.loads(bytes(response.body)) == {"error": "the log is down"}


def test_admin_token_check() -> None:
    from pydantic import SecretStr

    from refit.core.errors import Forbidden, Unauthorized
    from refit.service.http.tokens import check_token

    secret = SecretStr("s3cret")
    check_token(b"Bearer s3cret", secret)
    check_token(b"bearer s3cret ", secret)
    with pytest.raises(Forbidden, match="disabled"):
        check_token(b"Bearer s3cret", None)
    with pytest.raises(Unauthorized):
        check_token(None, secret)
    with pytest.raises(Unauthorized):
        check_token(b"s3cret", secret)
    with pytest.raises(Forbidden, match="wrong"):
        check_token(b"Bearer s3cre", secret)


@pytest.mark.parametrize("token", ["пароль", "密码密码", "mot-de-passe-été", "ключ\u00a0ß", "🔑🔑"])
def test_a_non_latin1_token_passes_only_as_its_own_utf8_bytes(token: str) -> None:
    from pydantic import SecretStr

    from refit.core.errors import Forbidden
    from refit.service.http.tokens import check_token

    secret = SecretStr(token)
    check_token(b"Bearer " + token.encode("utf-8"), secret)
    # What a lossy codec made of the token once passed: every character as '?'.
    for forged in (
        b"?" * len(token),
        token.encode("latin-1", "replace"),
        token.encode("utf-8")[:-1],
        token.encode("utf-8") + b"x",
        token[:-1].encode("utf-8"),
    ):
        with pytest.raises(Forbidden, match="wrong"):
            check_token(b"Bearer " + forged, secret)
    with pytest.raises(Forbidden, match="wrong"):
        check_token(b"Bearer " + token.encode("utf-16"), secret)


@pytest.mark.parametrize("blank", ["", " ", "\t", "\xa0", "\x85"])
def test_a_blank_token_setting_counts_as_unset(blank: str) -> None:
    from refit.service.settings import ServingSettings

    serving = ServingSettings(admin_token=blank, feedback_token=blank)
    assert serving.admin_token is None
    assert serving.feedback_token is None
