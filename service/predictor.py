"""The served model: a classifier plus the version it came from."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.inference import TextClassifier
from core.registry import ModelVersion, check_version_files
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    classifier: TextClassifier
    version: ModelVersion

    @classmethod
    def load(cls, version: ModelVersion, settings: Settings) -> ServedModel:
        """Load a registered version, check it, and warm it up."""
        check_version_files(version.path)
        classifier = TextClassifier.from_folder(
            version.path,
            device=settings.core.device,
            max_length=version.max_length(settings.training.max_length),
            max_batch_tokens=settings.serving.max_batch_tokens,
            # Drift checks compare these with the training data's; they come from the
            # forward pass that serves the request, so they cost no second model.
            capture_embeddings=settings.monitoring.enabled,
            cpu_backend=settings.serving.cpu_backend,
        )
        classifier.warm_up()
        logger.info("loaded %s on %s", version.tag, classifier.device)
        return cls(classifier, version)
