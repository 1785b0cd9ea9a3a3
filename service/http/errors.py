"""How failures reach clients and the log.

BentoML answers a request that fails pydantic validation with a 400 whose body
holds each error's location and message, under a headline such as "1 validation
error for Input". `ClientErrorMessages` rewrites the headline to name the field
and its limit ("texts: List should have at most 64 items ..."), so a client sees
what to fix at a glance. BentoML also logs a traceback for every such request,
which buries real failures under client mistakes; `QuietClientErrors` turns
those into one-line warnings.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import Message

from refit.core.compat.bentoml import HTTP_APP_LOGGER
from refit.core.errors import RefitError
from refit.service.http.response_rewrite import ResponseRewrite

P = ParamSpec("P")
R = TypeVar("R")

# Seconds a client should wait before retrying a 503 that names no better time.
RETRY_AFTER_S = 5


def error_response(exc: RefitError) -> JSONResponse:
    """The response for `exc`: its class's status, its message, and the headers that
    status calls for (every 429 and 503 says when to retry)."""
    body: dict[str, Any] = {"error": str(exc)}
    headers: dict[str, str] = {}
    if exc.retry_after_s is not None:
        headers["retry-after"] = str(exc.retry_after_s)
        body["retry_after_s"] = exc.retry_after_s
    elif exc.status in (429, 503):
        headers["retry-after"] = str(RETRY_AFTER_S)
    if exc.status == 401:
        headers["www-authenticate"] = "Bearer"
    return JSONResponse(body, status_code=exc.status, headers=headers)


def logged_error_response(exc: RefitError, log: logging.Logger, where: str) -> JSONResponse:
    """`error_response(exc)`, with a log line unless it is a refusal (429, 503): those are
    counted and logged where they are decided."""
    if exc.status not in (429, 503):
        log.warning("%s: %s", where, exc)
    return error_response(exc)


def http_errors(func: Callable[P, R]) -> Callable[P, R | JSONResponse]:
    """Answer a `RefitError` raised by an API method with its status and message.

    Works for plain and async methods alike. Refusals (429, 503) are counted and
    logged where they are decided; only other errors get a log line here.
    """
    log = logging.getLogger(func.__module__)

    def answer(exc: RefitError) -> JSONResponse:
        return logged_error_response(exc, log, func.__name__)

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            try:
                return await func(*args, **kwargs)  # type: ignore[misc]
            except RefitError as exc:
                return answer(exc)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | JSONResponse:
        try:
            return func(*args, **kwargs)
        except RefitError as exc:
            return answer(exc)

    return wrapper


def describe_validation_errors(details: list[dict[str, Any]]) -> str:
    """`field: message` for each pydantic error, joined into one line."""
    parts = []
    for item in details:
        loc = ".".join(str(p) for p in item.get("loc", ())) or "body"
        parts.append(f"{loc}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


class ClientErrorMessages(ResponseRewrite):
    """ASGI middleware: give BentoML's 400 responses a headline naming the fields."""

    def rewrites(self, start: Message) -> bool:
        return bool(start["status"] == 400)

    def rewrite(self, start: Message, body: bytes) -> tuple[Message, bytes]:
        try:
            payload = json.loads(body)
            details = payload["detail"]
            payload["error"] = describe_validation_errors(details)
            body = json.dumps(payload).encode()
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # not a validation error body: pass it on untouched
        return start, body


class QuietClientErrors(logging.Filter):
    """Log a client's invalid request as one line, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            headline = record.getMessage().replace("Exception on", "Rejected a request to", 1)
            record.msg = f"{headline}: {exc.error_count()} invalid field(s)"
            record.args = ()
        return True


def install_log_filters() -> None:
    target = logging.getLogger(HTTP_APP_LOGGER)
    if not any(isinstance(f, QuietClientErrors) for f in target.filters):
        target.addFilter(QuietClientErrors())
