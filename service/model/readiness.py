"""`GET /readyz` that says what the worker serves, and whether it is a fallback.

BentoML answers /readyz itself (200 with an empty body once the service instance
exists; `__is_ready__` could only turn that into a 503). This middleware lets
BentoML decide the status, then replaces the body with the worker's state:

    {"ready": true, "serving": "<tag>", "champion": "<tag>", "fallback": false, "reason": "",
     "backend": "onnx-int8", "backend_reason": "auto: ...", "device": "cpu"}

`fallback` is true while the worker serves an earlier version because the
champion cannot be loaded, at startup or at a hot-swap; `reason` says why.
`backend` is the inference backend answering (`core.backends`), and
`backend_reason` why it was chosen, or why the one asked for gave way to torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Scope

from refit.service.http.response_rewrite import ResponseRewrite

READYZ = "/readyz"


class ReadinessDetails(ResponseRewrite):
    """ASGI middleware: BentoML's /readyz status, with the worker's state as the body."""

    def __init__(self, app: ASGIApp, *, state: Callable[[], dict[str, Any] | None]) -> None:
        super().__init__(app)
        self.state = state  # the worker's account of what serves; None while starting

    def applies(self, scope: Scope) -> bool:
        return bool(scope.get("path") == READYZ and scope["method"] == "GET")

    def rewrite(self, start: Message, body: bytes) -> tuple[Message, bytes]:
        status: int = start["status"]
        details: dict[str, Any] = {"ready": status == 200, **(self.state() or {})}
        if status != 200:  # BentoML's own words on why not
            details["detail"] = body.decode(errors="replace").strip()
        answer = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
        return answer, json.dumps(details).encode()
