"""The served model: a version on its inference backend (`core.backends`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from refit.core.backends.base import Backend
from refit.core.backends.loading import BackendOptions
from refit.core.errors import ModelLoadError, RefitError
from refit.core.load_errors import describe_cause
from refit.core.registry import ModelVersion
from refit.core.version_check import load_checked
from refit.service.settings import Settings
from refit.training.export_later import ensure_exported

logger = logging.getLogger(__name__)


@dataclass
class ServedModel:
    classifier: Backend
    version: ModelVersion
    # Versions this worker could not load before it settled on this one (tag -> why):
    # set when a worker starts on a fallback because its champion does not load.
    refused: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, version: ModelVersion, settings: Settings) -> ServedModel:
        """Load a registered version on its backend, prove it predicts, and warm it up.

        A version registered before backends were exported is exported first, when a
        backend other than torch may serve it on this CPU (`ensure_exported`).
        Raises ModelLoadError, naming the version, whatever went wrong.
        """
        options = serving_options(version, settings)
        ensure_exported(
            version.path, version.tag, options, enabled=settings.training.export_backends
        )
        classifier = load_checked(version.path, version.tag, options)
        try:
            classifier.warm_up()
        except Exception as exc:
            cause = describe_cause(exc, version.path)
            raise ModelLoadError(f"model version {version.tag} fails to warm up: {cause}") from exc
        logger.info(
            "loaded %s on %s: %s (%s)",
            *(version.tag, classifier.device, classifier.name, classifier.reason),
        )
        return cls(classifier, version)


def serving_options(version: ModelVersion, settings: Settings) -> BackendOptions:
    """How a server worker loads `version`."""
    return BackendOptions(
        backend=settings.serving.backend,
        device=settings.core.device,
        max_length=version.max_length(settings.training.max_length),
        max_batch_tokens=settings.serving.max_batch_tokens,
        # Drift checks compare these with the training data's; they come from the
        # forward pass that serves the request, so they cost no second model.
        capture_embeddings=settings.monitoring.enabled,
        trace=settings.serving.forward_pass == "traced",
        threads=settings.serving.resolved_torch_threads(),
    )


def load_failure(exc: Exception, tag: str) -> str:
    """Why version `tag` cannot serve, from what loading it raised; names no folder."""
    if isinstance(exc, RefitError):
        return str(exc)  # refit's own errors name the version already
    return f"model version {tag} cannot be served: {describe_cause(exc)}"
