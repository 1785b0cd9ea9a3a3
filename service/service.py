"""The BentoML service: wiring only.

BentoML reads a service's configuration (workers, batching limits, request
schema) from its decorators when this module is imported, so this is the one
module that reads settings at import time.
"""

from __future__ import annotations

import bentoml
import torch

from core.errors import ModelLoadError, PredictionLogUnavailable
from core.registry import Registry
from monitoring.drift.export import drift_exposition
from monitoring.prediction_log import PredictionLog
from monitoring.prometheus_metrics import create_series
from retraining.watch_state import state_path
from service.admin import AdminAuth
from service.admission import WORKER, RequestAccounting
from service.errors import ClientErrorMessages, http_errors, install_log_filters
from service.hot_swap import HotSwapper
from service.pipeline import ClassifyPipeline
from service.predictor import ServedModel
from service.schemas import FeedbackItems, FeedbackResult, Prediction, SwapResult, texts_type
from service.settings import get_settings

settings = get_settings()
Texts = texts_type(settings)
API_ROUTES = ("/classify", "/feedback", "/admin/reload")


@bentoml.service(
    name="refit",
    workers=settings.serving.resolved_workers(),
    traffic={"timeout": settings.serving.request_timeout_s},
    logging={
        "access": {
            "enabled": settings.serving.access_log,
            "skip_paths": ["/metrics", "/livez", "/readyz", "/healthz"],
        }
    },
)
class Classifier:
    """Text classification with adaptive batching across requests."""

    # Declared here so that `bentoml build` packages the served version.
    model_ref = bentoml.models.BentoModel(Registry.from_settings(settings.core).serving_tag())

    def __init__(self) -> None:
        install_log_filters()
        torch.set_num_threads(settings.serving.resolved_torch_threads())
        version = Registry.from_settings(settings.core).get(self.model_ref.tag.version)
        served = ServedModel.load(version, settings)
        self.log: PredictionLog | None = None
        if settings.monitoring.enabled:
            create_series(API_ROUTES)
            self.log = PredictionLog.from_settings(settings)
            self.log.start()
        WORKER.log, WORKER.confirm_timeout_s = self.log, settings.monitoring.log_confirm_timeout_s
        self.pipeline = ClassifyPipeline(served, settings, self.log)
        self.swapper = HotSwapper(self.pipeline, settings)
        self.swapper.start()

    @bentoml.api(
        route="/classify",
        batchable=settings.serving.adaptive_batching,
        max_batch_size=settings.serving.max_batch_size,
        # Admission (RequestAccounting) keeps queueing within max_latency_ms; BentoML's
        # own shedding, which answers 503 after the wait, sits behind it as a backstop.
        max_latency_ms=2 * settings.serving.max_latency_ms,
    )
    def classify(self, texts: Texts) -> list[Prediction]:  # type: ignore[valid-type]
        """Classify texts; one result per text, in order."""
        return self.pipeline.classify(texts)  # type: ignore[return-value]

    @bentoml.api(route="/feedback")
    @http_errors
    def feedback(self, items: FeedbackItems) -> list[FeedbackResult]:
        """Attach true labels to logged predictions; one outcome per item, in order."""
        if self.log is None:
            raise PredictionLogUnavailable("the prediction log is off (REFIT_MONITORING=false)")
        known = self.pipeline.served.classifier.labels
        outcomes = self.log.attach_feedback([(i.id, i.label) for i in items], known)
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
        """BentoML's /metrics body plus the latest drift check's gauges."""
        state_dir = settings.core.resolved_state_dir()
        return content + drift_exposition(state_dir, state_path(settings.core))

    @bentoml.on_shutdown
    def close(self) -> None:
        """Write what the prediction log still holds before the worker exits."""
        self.swapper.stop()
        if self.log is not None:
            self.log.close()


# The decorator made `Classifier` a bentoml Service, which takes ASGI middleware.
Classifier.add_asgi_middleware(AdminAuth, token=settings.serving.admin_token)  # type: ignore[attr-defined]
Classifier.add_asgi_middleware(ClientErrorMessages)  # type: ignore[attr-defined]
Classifier.add_asgi_middleware(  # type: ignore[attr-defined]
    RequestAccounting,
    endpoints=frozenset(API_ROUTES),
    admitted=frozenset({"/classify"}),
    durable=frozenset({"/classify"}),
    max_in_flight_texts=settings.serving.max_in_flight_texts,
    latency_budget_s=settings.serving.max_latency_ms / 1000,
)
