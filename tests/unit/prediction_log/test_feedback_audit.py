"""Feedback as training data: every label change kept, and a cap on labels the model
does not know, on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from log_helpers import LABELS, logged_ids, metric
from pydantic import SecretStr
from starlette.types import Message, Receive, Scope, Send

from refit.monitoring.feedback_rules import NewLabelRoom, feedback_outcomes
from refit.monitoring.prediction_log import PredictionLog
from refit.service.http.tokens import Guard, TokenGuard


def test_every_label_change_is_kept_in_order(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(log_url)
    a, b = logged_ids(log, 2)
    log.attach_feedback([(a, "billing")], LABELS)
    log.attach_feedback([(a, "billing"), (a, "refund"), (b, "shipping")], LABELS)
    assert log.feedback_history(a) == [(None, "billing"), ("billing", "refund")]
    assert log.feedback_history(b) == [(None, "shipping")]
    assert log.feedback_history("unknown") == []


def test_new_labels_past_the_cap_are_refused(
    log_url: str, open_log: Callable[..., PredictionLog]
) -> None:
    log = open_log(log_url)
    a, b, c, d, e = logged_ids(log, 5)
    before = metric("refit_feedback_items_total", outcome="refused")
    first = log.attach_feedback([(a, "fraud"), (b, "fraud"), (c, "gift cards")], LABELS, 2)
    assert first == ["new_label", "new_label", "new_label"]
    # Two new labels exist now: a third is refused, the known ones still go through.
    second = log.attach_feedback([(d, "spam"), (e, "fraud"), (d, "billing")], LABELS, 2)
    assert second == ["refused", "new_label", "stored"]
    assert metric("refit_feedback_items_total", outcome="refused") - before == 1
    assert log.feedback_history(d) == [(None, "billing")]


def test_the_cap_rule_on_hand_made_state() -> None:
    room = NewLabelRoom(given={"fraud"}, cap=1)
    outcomes, changes = feedback_outcomes(
        [("1", "fraud"), ("2", "spam"), ("3", "billing")],
        {"1": None, "2": None, "3": "refund"},
        known_labels={"billing", "refund"},
        room=room,
    )
    assert outcomes == ["new_label", "refused", "updated"]
    assert changes == {"1": "fraud", "3": "billing"}


async def _answer_200(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"[]"})


def _call(guard: TokenGuard, path: str, token: str | None) -> int:
    statuses: list[int] = []
    headers = [(b"authorization", f"Bearer {token}".encode())] if token is not None else []

    async def receive() -> Message:
        raise AssertionError("neither the guard nor the app reads the body")

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    asyncio.run(guard(scope, receive, send))
    return statuses[0]


def test_feedback_needs_its_token_only_when_one_is_set() -> None:
    open_ = TokenGuard(
        _answer_200, guards=(Guard("/feedback", None, "REFIT_FEEDBACK_TOKEN", False),)
    )
    assert _call(open_, "/feedback", None) == 200
    secret = SecretStr("fb-token")
    closed = TokenGuard(
        _answer_200, guards=(Guard("/feedback", secret, "REFIT_FEEDBACK_TOKEN", False),)
    )
    assert _call(closed, "/feedback", None) == 401
    assert _call(closed, "/feedback", "wrong") == 403
    assert _call(closed, "/feedback", "fb-token") == 200
    assert _call(closed, "/classify", None) == 200
    admin = TokenGuard(_answer_200, guards=(Guard("/admin/", None, "REFIT_ADMIN_TOKEN", True),))
    assert _call(admin, "/admin/reload", "") == 403
