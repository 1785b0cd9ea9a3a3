"""`GET /readyz` that says what the worker serves, and whether it is a fallback.

BentoML answers /readyz itself (200 with an empty body once the service instance
exists; `__is_ready__` could only turn that into a 503). This middleware lets
BentoML decide the status, then replaces the body with the worker's state:

    {"ready": true, "serving": "<tag>", "champion": "<tag>", "fallback": false, "reason": "",
     "degraded": false, "prediction_log": {"state": "ok"},
     "backend": "onnx-int8", "backend_reason": "auto: ...", "device": "cpu"}

`fallback` is true while the worker serves an earlier version because the
champion cannot be loaded, at startup or at a hot-swap; `reason` says why.
`backend` is the inference backend answering (`core.backends`), and
`backend_reason` why it was chosen, or why the one asked for gave way to torch.
`degraded` is true while the prediction log cannot write (`prediction_log` says since
when and why). The status stays BentoML's (200: a load balancer keeps sending traffic,
which is answered, each response marked unconfirmed), except that a state with `ready`
false turns a 200 into a 503: with REFIT_LOG_CONFIRM_MODE=strict every response would be
refused while the log fails, so traffic had better go to a replica whose log works.
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
        state = self.state() or {}
        status: int = start["status"]
        if status == 200 and state.get("ready") is False:
            status = 503
        details: dict[str, Any] = {"ready": status == 200}
        details.update((key, value) for key, value in state.items() if key != "ready")
        if start["status"] != 200:  # BentoML's own words on why not
            details["detail"] = body.decode(errors="replace").strip()
        answer = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
        return answer, json.dumps(details, allow_nan=False).encode()
