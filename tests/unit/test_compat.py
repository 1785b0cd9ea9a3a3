"""Every dependency internal refit relies on is named in `core/compat/` alone, and each
still exists and behaves as that home assumes (so an upgrade fails here, not silently)."""

from __future__ import annotations

import importlib.util
import inspect
import logging
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import bentoml
import pytest
from paths import ROOT

from refit.core.compat import bentoml as compat_bentoml
from refit.core.compat import evidently as compat_evidently
from refit.core.compat import uvicorn as compat_uvicorn

INTERNALS = re.compile(r"bentoml\._internal|_bentoml_impl|_bentoml_sdk|uvicorn\.protocols")
COMPAT = ROOT / "core" / "compat"


def _sources() -> list[Path]:
    skip = {".venv", ".git", "node_modules", "build"}
    return [
        path
        for path in ROOT.rglob("*.py")
        if not skip & set(path.parts)
        and COMPAT not in path.parents
        and path.resolve() != Path(__file__).resolve()
    ]


def test_no_internal_is_named_outside_the_compat_home() -> None:
    found = {
        str(path.relative_to(ROOT)): INTERNALS.findall(path.read_text()) for path in _sources()
    }
    assert {name: hits for name, hits in found.items() if hits} == {}


def test_the_versions_checked_are_the_versions_installed() -> None:
    assert version("bentoml") == compat_bentoml.WRITTEN_FOR
    assert version("evidently") == compat_evidently.WRITTEN_FOR
    for package, wanted in compat_uvicorn.WRITTEN_FOR.items():
        assert version(package) == wanted


def test_bentoml_still_builds_apps_from_the_names_refit_replaces() -> None:
    app_module = importlib.util.find_spec("_bentoml_impl.server.app")
    assert app_module is not None
    assert app_module.origin is not None
    source = Path(app_module.origin).read_text()
    # Imported by name inside the method that assembles a worker's middlewares.
    assert "from bentoml._internal.server.http.instruments import (" in source
    assert "RunnerTrafficMetricsMiddleware," in source
    base = inspect.getsource(inspect.getmodule(compat_bentoml.TimeoutMiddleware))  # type: ignore[arg-type]
    assert "class TimeoutMiddleware" in base
    params = list(inspect.signature(compat_bentoml.TimeoutMiddleware.__init__).parameters)
    assert params == ["self", "app", "timeout"]
    params = list(inspect.signature(compat_bentoml.TrafficMetricsMiddleware.__init__).parameters)
    assert params[:3] == ["self", "app", "namespace"]


def test_the_replacements_must_be_subclasses() -> None:
    with pytest.raises(TypeError, match="must subclass"):
        compat_bentoml.use_traffic_metrics(object)
    with pytest.raises(TypeError, match="must subclass"):
        compat_bentoml.use_timeout_middleware(object)


def test_the_worker_module_and_the_http_logger_exist() -> None:
    assert importlib.util.find_spec(compat_bentoml.WORKER_MODULE) is not None
    logger_module = compat_bentoml.HTTP_APP_LOGGER
    assert importlib.util.find_spec(logger_module) is not None
    source = Path(importlib.util.find_spec(logger_module).origin).read_text()  # type: ignore[arg-type, union-attr]
    assert "logger = logging.getLogger(__name__)" in source
    assert "logger.error(" in source or "logger.exception(" in source
    assert not compat_bentoml.is_worker_process()  # the test process is not one


@bentoml.service(name="compat-check")
class _Echo:
    @bentoml.api
    def echo(self, texts: list[str]) -> list[str]:
        return [t.upper() for t in texts]


SERVICE: Any = _Echo


def test_api_methods_are_non_data_descriptors_with_a_local_function() -> None:
    method = SERVICE.apis["echo"]
    assert not hasattr(type(method), "__set__")
    instance = SERVICE.inner()
    assert compat_bentoml.bind_api_methods(instance, SERVICE.apis) == ["echo"]
    assert instance.echo.local(["a"]) == ["A"]
    assert compat_bentoml.declare_json_responses(SERVICE.apis) == ["echo"]
    assert SERVICE.apis["echo"].output_spec.media_type == "application/json"


def test_the_model_store_is_where_bentoml_keeps_it(tmp_path: Path) -> None:
    from refit.core.settings import bentoml_home

    store = compat_bentoml.model_store_folder(bentoml_home())
    listed = bentoml.models.list()  # opens (and creates) BentoML's own store
    assert isinstance(listed, list)
    assert store.is_dir()


def test_uvicorn_serves_http_with_the_patched_protocol() -> None:
    protocol = compat_uvicorn.HttpToolsProtocol
    for hook in ("connection_made", "on_headers_complete", "on_response_complete"):
        assert callable(getattr(protocol, hook))
    assert callable(protocol.connection_lost)
    assert compat_uvicorn.AutoHTTPProtocol is protocol
    for hook in ("data_received", "on_url", "on_header", "send_400_response"):
        assert callable(getattr(protocol, hook))
    limits = compat_uvicorn.HeadLimits(deadline_s=3.0)
    compat_uvicorn.install_head_limits(limits)
    assert protocol._refit_limits == limits  # type: ignore[attr-defined]


def test_evidently_renders_pages_from_the_parts_refit_reads() -> None:
    import pandas as pd
    from evidently import Dataset, Report
    from evidently.metrics import ValueDrift

    frame = pd.DataFrame({"x": [float(i % 7) for i in range(40)]})
    snapshot = Report([ValueDrift(column="x")]).run(
        Dataset.from_pandas(frame), Dataset.from_pandas(frame)
    )
    parts = compat_evidently.snapshot_page_parts(snapshot)
    assert parts.page_without_data.count(parts.data_marker) == 1
    assert parts.dashboard["widgets"]
    logging.getLogger(__name__).debug("%d additional graphs", len(parts.additional_graphs))


def test_tracing_off_hands_bentoml_a_pass_through_and_on_gives_its_middleware_back() -> None:
    import asyncio

    import opentelemetry.instrumentation.asgi as otel_asgi

    found = otel_asgi.OpenTelemetryMiddleware  # an app built earlier may have switched it
    compat_bentoml.trace_requests(True)
    original = otel_asgi.OpenTelemetryMiddleware
    assert original.__module__.startswith("opentelemetry")
    try:
        compat_bentoml.trace_requests(False)
        calls: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            calls.append(scope["path"])

        middleware = otel_asgi.OpenTelemetryMiddleware(app, excluded_urls="x")  # type: ignore[arg-type]
        asyncio.run(middleware({"type": "http", "path": "/classify"}, None, None))  # type: ignore[arg-type]
        assert calls == ["/classify"]
        assert otel_asgi.OpenTelemetryMiddleware is not original
        compat_bentoml.trace_requests(True)
        assert otel_asgi.OpenTelemetryMiddleware is original
    finally:
        otel_asgi.OpenTelemetryMiddleware = found  # type: ignore[misc]
