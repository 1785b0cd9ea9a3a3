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
from starlette.types import Message, Scope

from service.response_rewrite import ResponseRewrite

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


class ReadinessDetails(ResponseRewrite):
    """ASGI middleware: BentoML's /readyz status, with the worker's state as the body."""

    def applies(self, scope: Scope) -> bool:
        return bool(scope.get("path") == READYZ and scope["method"] == "GET")

    def rewrite(self, start: Message, body: bytes) -> tuple[Message, bytes]:
        status: int = start["status"]
        details: dict[str, Any] = {"ready": status == 200, **(worker_state() or {})}
        if status != 200:  # BentoML's own words on why not
            details["detail"] = body.decode(errors="replace").strip()
        answer = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
        return answer, json.dumps(details).encode()
