"""Bearer tokens in front of the endpoints that change state.

An ASGI middleware rather than a check inside each endpoint: nothing under a
guarded path can be added later without the guard, and refusals never reach the
service code. `/admin/…` is closed unless `REFIT_ADMIN_TOKEN` is set; `/feedback`,
which feeds the next model's training data, is open unless `REFIT_FEEDBACK_TOKEN`
is set, and then needs it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from refit.core.errors import Forbidden, RefitError, Unauthorized
from refit.service.http.errors import error_response

ADMIN_PREFIX = "/admin/"
_SCHEME = b"bearer "


@dataclass(frozen=True)
class Guard:
    prefix: str  # paths starting with this are guarded
    token: SecretStr | None
    variable: str  # the setting that holds the token, named in messages
    closed_without_token: bool  # unset token: refuse everything (True) or allow (False)


def check_token(header: bytes | None, expected: SecretStr | None, variable: str = "") -> None:
    """Raise unless the raw `Authorization` header is `Bearer <expected>`.

    Both sides are compared as UTF-8 bytes: a header is bytes on the wire, and decoding
    it (or encoding the setting) with a lossy codec would let strings other than the
    token through (every non-Latin-1 character of a token once became `?`).
    """
    variable = variable or "REFIT_ADMIN_TOKEN"
    if expected is None:
        raise Forbidden(f"this endpoint is disabled; set {variable} to enable it")
    if not header or header[: len(_SCHEME)].lower() != _SCHEME:
        raise Unauthorized(f"send the token as 'Authorization: Bearer <{variable}>'")
    given = header[len(_SCHEME) :].strip(b" \t")
    if not hmac.compare_digest(given, expected.get_secret_value().encode("utf-8")):
        raise Forbidden("wrong token")


class TokenGuard:
    def __init__(self, app: ASGIApp, *, guards: tuple[Guard, ...]) -> None:
        self.app = app
        self.guards = guards

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = self._guard_for(scope)
        if guard is not None:
            raw = dict(scope.get("headers", [])).get(b"authorization")
            try:
                check_token(raw, guard.token, guard.variable)
            except RefitError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _guard_for(self, scope: Scope) -> Guard | None:
        # Only the method a guarded route serves is guarded: any other gets its 405.
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None
        path = scope.get("path", "")
        for guard in self.guards:
            if path.startswith(guard.prefix):
                if guard.token is None and not guard.closed_without_token:
                    return None
                return guard
        return None
