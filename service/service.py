"""The BentoML service: wiring only.

BentoML reads a service's configuration (workers, batching, request schema) from
its decorators when this module is imported, so this is the one module that reads
settings at import time.
"""

from __future__ import annotations

import bentoml

from refit.core.compat.bentoml import bind_api_methods, declare_json_responses, trace_requests
from refit.core.compat.uvicorn import HeadLimits, install_head_limits
from refit.core.errors import ModelLoadError, PredictionLogUnavailable
from refit.core.model_store import link_model_store
from refit.core.registry import Registry
from refit.monitoring.drift.export import drift_exposition
from refit.monitoring.log_engine import require_usable_url
from refit.monitoring.prediction_log import PredictionLog
from refit.monitoring.prometheus_metrics import create_series
from refit.retraining.watch_state import state_path
from refit.service.http.accounting import RequestAccounting, count_head_refusal
from refit.service.http.body_limits import BodyLimits
from refit.service.http.bounded_paths import RestorePath, install_bounded_metrics
from refit.service.http.classify_route import ClassifyRoute
from refit.service.http.errors import ClientErrorMessages, http_errors, install_log_filters
from refit.service.http.openapi_doc import OpenAPIStatuses
from refit.service.http.response_deadline import install_response_deadline
from refit.service.http.tokens import ADMIN_PREFIX, Guard, TokenGuard
from refit.service.model.frozen_heap import freeze_heap
from refit.service.model.hot_swap import HotSwapper
from refit.service.model.parent_watch import watch_parent
from refit.service.model.readiness import ReadinessDetails
from refit.service.model.startup import load_served_model, open_log
from refit.service.pages.front_page import FrontPage
from refit.service.parts import WorkerParts
from refit.service.scheduling.admission import FrontDoor
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.scheduling.log_confirmation import LogConfirmation
from refit.service.schemas import (
    FeedbackItems,
    FeedbackResult,
    Prediction,
    SwapResult,
    plain_texts_reader,
    texts_type,
)
from refit.service.settings import get_settings

settings = get_settings()
link_model_store(settings.core)  # REFIT_MODEL_STORE, before the store is read below
if settings.monitoring.enabled:
    # A log URL that cannot work fails here, in BentoML's own process, before it starts
    # any worker (`refit serve` checks it earlier still, and more).
    require_usable_url(settings.monitoring.resolved_log_url(settings.core))
serving = settings.serving
Texts = texts_type(serving)
API_ROUTES = ("/classify", "/feedback", "/admin/reload")
BODY_ROUTES = frozenset({"/classify", "/feedback"})
# Each patches what BentoML builds in each worker; see their modules for why.
install_bounded_metrics()
install_head_limits(
    HeadLimits(
        deadline_s=serving.request_read_timeout_s,
        url_bytes=serving.max_url_bytes,
        header_bytes=serving.max_header_bytes,
        header_count=serving.max_header_count,
        head_bytes=serving.max_head_bytes,
    ),
    on_refusal=count_head_refusal,
)
install_response_deadline()
trace_requests(serving.tracing)
PARTS = WorkerParts()  # this worker's instance's parts, for its middleware


@bentoml.service(
    name="refit",
    workers=serving.resolved_workers(),
    traffic={"timeout": serving.request_timeout_s},
    logging={
        "access": {
            "enabled": serving.access_log,
            "skip_paths": ["/metrics", "/livez", "/readyz", "/healthz"],
        }
    },
)
class Classifier:
    """Text classification; refit's scheduler batches across requests."""

    # Declared here so that `bentoml build` packages the served version.
    model_ref = bentoml.models.BentoModel(Registry.from_settings(settings.core).serving_tag())

    def __init__(self) -> None:
        install_log_filters()
        self.log: PredictionLog | None = None
        if settings.monitoring.enabled:
            create_series(API_ROUTES)
            self.log = open_log(settings)  # first: a log that cannot work stops the server
        # The champion, else the most recent earlier one that loads (service/model/startup.py).
        registry = Registry.from_settings(settings.core)
        served = load_served_model(registry, self.model_ref.tag.version, settings)
        self.handler = ClassifyHandler(served, settings, self.log)
        if serving.batching == "scheduler":
            self.handler.start_scheduler()
        self.swapper = HotSwapper(self.handler, settings)
        self.swapper.start()
        PARTS.attach(self.handler, self.swapper)
        watch_parent(self._stop_and_flush)  # orphaned by a killed server: flush, exit
        bind_api_methods(self, Classifier.apis)  # type: ignore[attr-defined]
        freeze_heap()  # last: what exists now lives as long as the worker

    def _stop_and_flush(self) -> None:
        """Refuse new work (503 with Retry-After), finish the round running, then write
        every record still queued: nothing answered with 200 is left unlogged."""
        self.swapper.stop()
        self.handler.close()
        if self.log is not None:
            self.log.close(timeout=5.0)

    if serving.batching == "scheduler":

        @bentoml.api(route="/classify")
        @http_errors
        async def classify(self, texts: Texts) -> list[Prediction]:  # type: ignore[valid-type]
            """Classify texts; one result per text, in order."""
            return await self.handler.classify(texts)  # type: ignore[return-value]

    else:  # the baselines benchmarks compare the scheduler with

        @bentoml.api(
            route="/classify",
            batchable=serving.batching == "bentoml",
            max_batch_size=serving.max_batch_size,
            max_latency_ms=serving.max_latency_ms,
        )
        def classify(self, texts: Texts) -> list[Prediction]:  # type: ignore[valid-type]
            """Classify texts; one result per text, in order."""
            return self.handler.classify_now(texts)  # type: ignore[return-value]

    @bentoml.api(route="/feedback")
    @http_errors
    def feedback(self, items: FeedbackItems) -> list[FeedbackResult]:
        """Attach true labels to logged predictions; one outcome per item, in order."""
        if self.log is None:
            raise PredictionLogUnavailable("the prediction log is off (REFIT_MONITORING=false)")
        known = self.handler.served.classifier.labels
        pairs = [(i.id, i.label) for i in items]
        outcomes = self.log.attach_feedback(pairs, known, serving.feedback_max_new_labels)
        return [FeedbackResult(id=i.id, outcome=o) for i, o in zip(items, outcomes, strict=True)]

    @bentoml.api(route="/admin/reload")
    @http_errors
    def reload(self) -> SwapResult:
        """Switch to the registry's champion now, without a restart (bearer token).

        Every worker also does this by itself within REFIT_RELOAD_INTERVAL_S.
        """
        outcome = self.swapper.swap_to_champion(retry_refused=True)
        if outcome.outcome == "refused":
            raise ModelLoadError(f"{outcome.reason}; still serving {outcome.serving}")
        return SwapResult(outcome=outcome.outcome, serving=outcome.serving)

    def __metrics__(self, content: str) -> str:
        """BentoML's /metrics body plus the latest drift check's and scheduler's gauges."""
        state_dir = settings.core.resolved_state_dir()
        return content + drift_exposition(state_dir, state_path(settings.core))

    @bentoml.on_shutdown
    def close(self) -> None:
        """Answer what is queued, then write what the prediction log still holds."""
        self.swapper.stop()
        self.handler.close()
        if self.log is not None:
            self.log.close()


# The media type of each JSON response, once, instead of from a schema per response.
declare_json_responses(Classifier.apis)  # type: ignore[attr-defined]


# The decorator made `Classifier` a bentoml Service, which takes ASGI middleware;
# the first added runs first. Each is handed what it reads of this worker's instance.
GUARDS = (
    Guard(ADMIN_PREFIX, serving.admin_token, "REFIT_ADMIN_TOKEN", closed_without_token=True),
    Guard("/feedback", serving.feedback_token, "REFIT_FEEDBACK_TOKEN", closed_without_token=False),
)
for middleware, options in (
    (RestorePath, {}),
    (TokenGuard, {"guards": GUARDS}),
    (RequestAccounting, {"endpoints": frozenset(API_ROUTES)}),
    (FrontDoor, {"path": "/classify", "scheduler": PARTS.scheduler}),
    # X-Refit-Log: unconfirmed on a response whose predictions are not on record yet.
    (LogConfirmation, {"path": "/classify"}),
    (BodyLimits, {"paths": BODY_ROUTES, "serving": serving}),
    # A plainly valid /classify goes straight to the scheduler; the rest on to BentoML.
    (
        ClassifyRoute,
        {
            "path": "/classify",
            "handler": PARTS.scheduled_handler,
            "plain_texts": plain_texts_reader(serving),
        },
    ),
    (ClientErrorMessages, {}),
    (OpenAPIStatuses, {}),
    # The front page (/), /docs, /status.json, reports and model cards.
    (
        FrontPage,
        {"core": settings.core, "served": PARTS.served_version, "backend": PARTS.served_backend},
    ),
    # GET /readyz answers with what this worker serves, on which backend, whether it is a
    # fallback, and whether its prediction log writes.
    (ReadinessDetails, {"state": PARTS.readiness}),
):
    Classifier.add_asgi_middleware(middleware, **options)  # type: ignore[attr-defined]
