"""The served model: a classifier plus the version it came from."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from refit.core.errors import ModelLoadError, RefitError
from refit.core.inference import TextClassifier
from refit.core.load_errors import describe_cause
from refit.core.registry import ModelVersion
from refit.core.version_check import load_checked
from refit.service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    classifier: TextClassifier
    version: ModelVersion
    # Versions this worker could not load before it settled on this one (tag -> why):
    # set when a worker starts on a fallback because its champion does not load.
    refused: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, version: ModelVersion, settings: Settings) -> ServedModel:
        """Load a registered version, prove it predicts, and warm it up.

        Raises ModelLoadError, naming the version, whatever went wrong.
        """
        classifier = load_checked(
            version.path,
            version.tag,
            device=settings.core.device,
            max_length=version.max_length(settings.training.max_length),
            max_batch_tokens=settings.serving.max_batch_tokens,
            # Drift checks compare these with the training data's; they come from the
            # forward pass that serves the request, so they cost no second model.
            capture_embeddings=settings.monitoring.enabled,
            cpu_backend=settings.serving.cpu_backend,
            trace=settings.serving.forward_pass == "traced",
        )
        try:
            classifier.warm_up()
        except Exception as exc:
            cause = describe_cause(exc, version.path)
            raise ModelLoadError(f"model version {version.tag} fails to warm up: {cause}") from exc
        logger.info(
            "loaded %s on %s, %s forward passes",
            *(version.tag, classifier.device, "traced" if classifier.traced else "eager"),
        )
        return cls(classifier, version)


def load_failure(exc: Exception, tag: str) -> str:
    """Why version `tag` cannot serve, from what loading it raised; names no folder."""
    if isinstance(exc, RefitError):
        return str(exc)  # refit's own errors name the version already
    return f"model version {tag} cannot be served: {describe_cause(exc)}"
