"""The BentoML service: wiring only.

BentoML reads a service's configuration (workers, batching limits, request
schema) from its decorators when this module is imported, so this is the one
module that reads settings at import time.
"""

from __future__ import annotations

import bentoml
import torch

from service.errors import ClientErrorMessages, install_log_filters
from service.predictor import ServedModel
from service.schemas import Prediction, texts_type
from training.registry import Registry
from training.settings import get_settings

settings = get_settings()
Texts = texts_type(settings)


@bentoml.service(
    name="refit",
    workers=settings.workers,
    traffic={"timeout": settings.request_timeout_s},
)
class Classifier:
    """Text classification with adaptive batching across requests."""

    # Declared here so that `bentoml build` packages the served version.
    model_ref = bentoml.models.BentoModel(Registry.from_settings(settings).serving_tag())

    def __init__(self) -> None:
        install_log_filters()
        torch.set_num_threads(settings.resolved_torch_threads())
        registry = Registry.from_settings(settings)
        self.served = ServedModel.load(registry.get(self.model_ref.tag.version), settings)

    @bentoml.api(
        route="/classify",
        batchable=True,
        max_batch_size=settings.max_batch_size,
        max_latency_ms=settings.max_latency_ms,
    )
    def classify(self, texts: Texts) -> list[Prediction]:  # type: ignore[valid-type]
        """Classify texts; one result per text, in order."""
        return self.served.classify(texts)  # type: ignore[return-value]


# The decorator made `Classifier` a bentoml Service, which takes ASGI middleware.
Classifier.add_asgi_middleware(ClientErrorMessages)  # type: ignore[attr-defined]
