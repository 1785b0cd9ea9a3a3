"""`GET /readyz` that says what the worker serves, and whether it is a fallback.

BentoML answers /readyz itself (200 with an empty body once the service instance
exists; `__is_ready__` could only turn that into a 503). This middleware lets
BentoML decide the status, then replaces the body with the worker's state:

    {"ready": true, "serving": "<tag>", "champion": "<tag>", "fallback": false, "reason": ""}

`fallback` is true while the worker serves an earlier version because the
champion cannot be loaded, at startup or at a hot-swap; `reason` says why.
"""

from __future__ import annotations

import json
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

READYZ = "/readyz"


def worker_state() -> dict[str, Any] | None:
    """The serving instance's hot-swapper's account, or None before there is one."""
    try:
        instance = bentoml.get_current_service()
    except BentoMLException:
        return None
    swapper = getattr(instance, "swapper", None)
    if swapper is None:
        return None
    try:
        return dict(swapper.readiness())
    except Exception as exc:  # an unreadable champion pointer must not fail the probe
        return {"error": f"cannot tell what serves: {type(exc).__name__}: {exc}"}


class ReadinessDetails:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != READYZ or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        status: int | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._answer(status or 500, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    @staticmethod
    async def _answer(status: int, original: bytes, send: Send) -> None:
        details: dict[str, Any] = {"ready": status == 200, **(worker_state() or {})}
        if status != 200:  # BentoML's own words on why not
            details["detail"] = original.decode(errors="replace").strip()
        body = json.dumps(details).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
