"""Guarding the /admin/ endpoints with a bearer token.

An ASGI middleware rather than a check inside each endpoint: nothing under the
prefix can be added later without the guard, and refusals never reach the
service code.
"""

from __future__ import annotations

import hmac

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import Forbidden, RefitError, Unauthorized
from service.errors import error_response

ADMIN_PREFIX = "/admin/"


def check_token(header: str | None, expected: SecretStr | None) -> None:
    """Raise unless `header` is `Bearer <expected>`."""
    if expected is None:
        raise Forbidden("admin endpoints are disabled; set REFIT_ADMIN_TOKEN to enable them")
    if not header or not header.lower().startswith("bearer "):
        raise Unauthorized("send the admin token as 'Authorization: Bearer <REFIT_ADMIN_TOKEN>'")
    given = header[len("bearer ") :].strip().encode()
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise Forbidden("wrong admin token")


class AdminAuth:
    def __init__(self, app: ASGIApp, *, token: SecretStr | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith(ADMIN_PREFIX):
            headers = dict(scope.get("headers", []))
            raw = headers.get(b"authorization")
            try:
                check_token(raw.decode("latin-1") if raw else None, self.token)
            except RefitError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
