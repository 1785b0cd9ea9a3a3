"""No response carries a score that is not a finite number.

A version whose weights are all finite can still give NaN or inf for some input (an
overflow in one token's path), and one with a NaN weight that predates the weight
check (`core/finite_weights.py`) gives NaN for every text holding the token. Each
forward pass's scores are checked before any answer is made: a request with such a
score gets a 500 counted as a model error (`NonFiniteScores`), is not logged, and the
version is flagged: one ERROR line a minute, `refit_model_non_finite_scores_total` by
version, and the count in the body of `GET /readyz`.

/readyz stays 200: every replica serving the version would turn unready on the same
input, so one client sending it could take the whole service out of rotation, while
each worker still answers every other input correctly. Rolling back is the operator's
call; the metric is what to alert on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from refit.core.backends.outputs import BatchOutput
from refit.core.errors import NonFiniteScores
from refit.core.quiet_log import QuietLog
from refit.monitoring import prometheus_metrics as metrics

logger = logging.getLogger(__name__)


class ScoreGuard:
    """Finds requests whose scores are not all finite, and flags their version."""

    def __init__(self) -> None:
        self.texts_by_version: dict[str, int] = {}  # texts answered 500 for it, per version
        self._log = QuietLog(logger, logging.ERROR)

    @staticmethod
    def failing(outputs: Sequence[BatchOutput]) -> list[int]:
        """Indices of the outputs with at least one score that is not a finite number."""
        return [i for i, out in enumerate(outputs) if not np.isfinite(out.probs).all()]

    def flag(self, version: str, texts: int) -> NonFiniteScores:
        """Count `texts` scored NaN or inf by `version`; the error their requests get."""
        total = self.texts_by_version[version] = self.texts_by_version.get(version, 0) + texts
        metrics.NON_FINITE_SCORES.labels(version).inc(texts)
        self._log(
            "model version %s gave scores that are not finite numbers (NaN or inf) for %d "
            "texts (%d so far); answered 500. Roll back (`refit models rollback`) or retrain",
            version,
            texts,
            total,
        )
        return NonFiniteScores(
            f"model version {version} gave a score that is not a finite number for this "
            "request; it was not answered or logged (the server log and "
            "refit_model_non_finite_scores_total say more)"
        )

    def readiness(self) -> dict[str, Any]:
        """What /readyz adds: texts answered 500 for non-finite scores, by version."""
        return {"non_finite_scores": dict(self.texts_by_version)} if self.texts_by_version else {}
