"""Every BentoML internal refit relies on, for BentoML 1.4.40 (pinned in pyproject.toml).

What each one is for is told where it is used; this module only knows where BentoML
keeps it, and checks at import that BentoML is the version these were read from.
`tests/unit/test_compat.py` checks that each still exists and behaves as assumed.

- Two ASGI middleware classes BentoML builds each worker's app from, by the name its
  modules hold them under when a worker assembles its app: the traffic-metrics
  middleware (labels request metrics with the raw path) and the timeout middleware
  (arms a timer per request and never cancels it). refit subclasses both and
  replaces the names (`service.http.bounded_paths`, `service.http.response_deadline`).
- The logger BentoML's HTTP app reports a failed request on (`service.http.errors`).
- The module each HTTP worker runs as, and its parent being the process manager that
  stops the whole server on SIGTERM (`service.model.startup`).
- API methods being non-data descriptors that build a wrapper per lookup, and the
  output spec's `media_type`, which BentoML itself sets for streams.
- The model store's place, `$BENTOML_HOME/models` (`core.model_store`).
- The OpenTelemetry ASGI middleware BentoML puts in front of every request, which it
  imports from `opentelemetry.instrumentation.asgi` by name when it builds a worker's
  app: with tracing off, refit hands it a pass-through instead (`trace_requests`).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from bentoml._internal.server.http import instruments, traffic
from bentoml._internal.server.http.instruments import (
    RunnerTrafficMetricsMiddleware as TrafficMetricsMiddleware,
)
from bentoml._internal.server.http.traffic import TimeoutMiddleware as TimeoutMiddleware

WRITTEN_FOR: Final = "1.4.40"
_installed = version("bentoml")
if _installed != WRITTEN_FOR:
    raise ImportError(
        f"refit patches BentoML {WRITTEN_FOR}'s internals (core/compat/bentoml.py), but "
        f"BentoML {_installed} is installed; install bentoml=={WRITTEN_FOR} or port the module"
    )

HTTP_APP_LOGGER: Final = "bentoml._internal.server.http_app"
WORKER_MODULE: Final = "_bentoml_impl.worker.service"
JSON: Final = "application/json"


def use_traffic_metrics(cls: type) -> None:
    """Make every worker build its app with `cls` as the traffic-metrics middleware."""
    if not issubclass(cls, TrafficMetricsMiddleware):
        raise TypeError(f"{cls.__name__} must subclass BentoML's traffic metrics middleware")
    instruments.RunnerTrafficMetricsMiddleware = cls  # type: ignore[misc]


def use_timeout_middleware(cls: type) -> None:
    """Make every worker build its app with `cls` as the response-timeout middleware."""
    if not issubclass(cls, TimeoutMiddleware):
        raise TypeError(f"{cls.__name__} must subclass BentoML's timeout middleware")
    traffic.TimeoutMiddleware = cls  # type: ignore[misc]


class _NoTracing:
    """Stands where BentoML puts OpenTelemetry's ASGI middleware: passes every call on."""

    def __init__(self, app: Any, **_options: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def trace_requests(enabled: bool) -> None:
    """Whether workers built from now on open an OpenTelemetry span per request.

    BentoML adds the middleware to every app whether or not anything collects the
    spans; on the tiny model it took about a fifth of a worker's event-loop time
    (py-spy, 64 connections). Off, BentoML's own tracing settings have nothing to act on.
    """
    import opentelemetry.instrumentation.asgi as otel_asgi

    global _OTEL_MIDDLEWARE
    if _OTEL_MIDDLEWARE is None:
        _OTEL_MIDDLEWARE = otel_asgi.OpenTelemetryMiddleware
    chosen: Any = _OTEL_MIDDLEWARE if enabled else _NoTracing
    otel_asgi.OpenTelemetryMiddleware = chosen  # type: ignore[misc]


_OTEL_MIDDLEWARE: type | None = None


def is_worker_process() -> bool:
    """Whether this process is one of `bentoml serve`'s HTTP workers."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name == WORKER_MODULE


def stop_server() -> None:
    """Ask the process manager that started this worker to stop every worker and exit."""
    os.kill(os.getppid(), signal.SIGTERM)


def bind_api_methods(instance: object, apis: Mapping[str, Any]) -> list[str]:
    """Store each API method of `apis` on `instance`, resolved once; the names bound.

    BentoML looks the endpoint's method up on the instance for every request, and each
    lookup builds a wrapper from `inspect.signature` (a tenth of a worker's event-loop
    time on the tiny model). An API method is a non-data descriptor, so an instance
    attribute of the same name wins over it; the HTTP handler uses the wrapper's
    `.local`, the same function whether built once or per request.
    """
    bound = []
    for name, method in apis.items():
        if hasattr(type(method), "__set__"):  # a data descriptor would shadow the attribute
            continue
        setattr(instance, name, method.__get__(instance, type(instance)))
        bound.append(name)
    return bound


def declare_json_responses(apis: Mapping[str, Any]) -> list[str]:
    """Set `media_type` on each API's output spec whose responses are JSON; their names.

    For an API returning a list or another root model, BentoML works the media type
    out from the output model's JSON schema, which pydantic rebuilds per response (a
    third of a worker's event-loop time under load on the tiny model). The value set is
    the one BentoML would have found.
    """
    declared = []
    for name, api in apis.items():
        spec = api.output_spec
        if spec.media_type is None and spec.mime_type() == JSON:
            spec.media_type = JSON
            declared.append(name)
    return declared


def model_store_folder(home: Path) -> Path:
    """Where BentoML keeps its model store under BENTOML_HOME `home` (no setting moves it)."""
    return home / "models"
