"""Settings owned by monitoring: metrics, the prediction log and drift checks.

Sections of the one settings object (`service.settings.Settings`); each field is
`REFIT_<FIELD NAME>` in the environment.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import AliasChoices, Field, model_validator

from refit.core.settings import CoreSettings, Section
from refit.training.settings import TrainingContext


class MonitoringSettings(Section):
    """What serving records: refit's metrics, their price, and the prediction log."""

    # The variable predates the section: REFIT_MONITORING, not REFIT_ENABLED.
    enabled: bool = Field(True, validation_alias=AliasChoices("REFIT_MONITORING", "enabled"))
    """Record refit's metrics and the prediction log; off leaves only BentoML's own metrics (for
    measuring what monitoring costs).
    """
    hourly_price_usd: float | None = Field(None, ge=0, le=10_000)
    """Hourly price of the serving machine, for the cost metrics. Default: 0.10 on CPU (a 2-vCPU
    instance), 4.00 on GPU (a one-GPU H100-class instance).
    """
    prediction_log_url: str | None = None
    """SQLAlchemy URL of the prediction log: `sqlite:///path` (default: predictions.sqlite3 in the
    state folder) or `postgresql+psycopg://...` when several replicas share one log.
    """
    log_sample_rate: float = Field(1.0, ge=0, le=1)
    """Share of predictions written to the log, chosen by a hash of the prediction id so that every
    replica samples alike.
    """
    log_text: Literal["raw", "redacted", "hashed"] = "raw"
    """What the log keeps of each text: the text itself, the text with e-mail addresses, phone
    numbers, card-like and other long digit runs masked, or only its SHA-256.
    """
    log_retention_days: float = Field(30, gt=0, le=3650)
    """Log records older than this are deleted (at most ten years)."""
    log_queue_size: int = Field(20000, ge=100, le=200_000)
    """Most prediction records waiting to be written; past it records are dropped and counted, and
    serving goes on. At most 200,000: each waiting record holds its text (up to
    REFIT_MAX_TEXT_CHARS characters).
    """
    log_flush_interval_ms: int = Field(20, ge=1, le=10000)
    """Longest a record waits before a write."""
    log_confirm_timeout_s: float = Field(2.0, ge=0, le=60)
    """Longest a response waits for its predictions to be written; past it, REFIT_LOG_CONFIRM_MODE
    decides. At most a minute.
    """
    log_confirm_mode: Literal["flag", "strict"] = "flag"
    """What a /classify response does when its predictions are not confirmed written in
    REFIT_LOG_CONFIRM_TIMEOUT_S (the log is slow or failing): `flag` answers anyway, with the header
    `X-Refit-Log: unconfirmed`, and counts it; `strict` refuses it with 503 and Retry-After, so that
    every 200 is on record, and /readyz answers 503 while the log cannot write.
    """
    log_start_check: Literal["quick", "open"] = "quick"
    """How `refit serve` checks a SQLite prediction log before it serves: `quick` runs SQLite's
    quick_check over the whole file (seconds per GB), `open` only what opening it reads
    (milliseconds: finds a file that is not SQLite or was cut short, not damage inside). Workers
    always run `open`. A damaged log stops the server and is left as it is.
    """

    def resolved_log_url(self, core: CoreSettings) -> str:
        """The log's URL: the setting, else a SQLite file in refit's state folder."""
        if self.prediction_log_url:
            return self.prediction_log_url
        return f"sqlite:///{core.resolved_state_dir() / 'predictions.sqlite3'}"


class DriftSettings(Section):
    """What a drift check compares, and when a signal counts as drifted."""

    drift_window: str = Field("1h", pattern=r"^[1-9][0-9]*[mhdw]$")
    """Window of recent predictions a drift check compares with the reference profile: minutes,
    hours, days or weeks, e.g. 30m, 1h, 2d, 1w.
    """
    drift_min_window_size: int = Field(200, ge=20, le=1_000_000)
    """Below this many logged predictions in the window a drift check reports 'not enough data'
    instead of a verdict.
    """
    drift_max_rows: int = Field(20000, ge=500, le=200_000)
    """Most current-window rows the Evidently report compares; a larger window is sampled down to
    this (uniformly, seeded). Window size, the accuracy estimate and feedback accuracy always use
    every row. At most 200,000 (Evidently took 5.3 s for 100,000 rows with text).
    """
    drift_numeric_method: Literal["ks", "wasserstein", "psi", "anderson", "mannw"] = "ks"
    """Evidently method for the text descriptors and the confidence: a p-value (ks, anderson, mannw:
    drift below the threshold) or a distance (wasserstein, psi: drift above it).
    """
    drift_numeric_threshold: float = Field(0.001, gt=0, le=100)
    """Threshold of drift_numeric_method for each descriptor and the confidence."""
    drift_label_method: Literal["chi2_homogeneity", "chisquare", "jensenshannon", "psi"] = Field(
        "chi2_homogeneity",
    )
    """Evidently method for the predicted-label distribution: chi2_homogeneity (refit's two-sample
    chi-square test, a p-value), chisquare (Evidently's goodness of fit to the reference's
    shares, which takes the reference's sampling noise for drift on large windows) or a distance
    (jensenshannon, psi).
    """
    drift_label_threshold: float = Field(0.001, gt=0, le=100)
    """Threshold of drift_label_method."""
    drift_text_threshold: float = Field(0.57, gt=0.5, lt=1)
    """ROC AUC of Evidently's text domain classifier (TF-IDF, reference vs current) above which the
    raw texts have drifted.
    """
    drift_embedding_method: Literal["knn", "mmd", "domain_classifier"] = "knn"
    """How the served model's embeddings are compared: `knn`, refit's cross-fitted nearest-
    neighbour novelty test (a p-value: are the window's texts farther from the reference than
    the reference is from itself?); `mmd`, a maximum mean discrepancy permutation test (a
    p-value: do they fill the model's space as the reference's do?), which also sees new
    topics that land inside the known classes' clusters but caught fewer windows holding 30%
    new topics (docs/drift.md); or `domain_classifier`, Evidently's classifier telling window
    from reference (a ROC AUC), which misses new topics that are a minority of the window.
    """
    drift_embedding_threshold: float | None = Field(None, gt=0, lt=1)
    """Threshold of the embedding test: a p-value below which the embeddings drifted (knn:
    default 0.001; mmd: 0.01, its p-values being multiples of 1/501), or a ROC AUC above
    which they did (domain_classifier: 0.6).
    """

    def embedding_threshold(self) -> float:
        if self.drift_embedding_threshold is not None:
            return self.drift_embedding_threshold
        return {"mmd": 0.01, "knn": 0.001}.get(self.drift_embedding_method, 0.6)

    @model_validator(mode="after")
    def _auc_above_chance(self) -> DriftSettings:
        auc = self.drift_embedding_method == "domain_classifier"
        if (
            auc
            and self.drift_embedding_threshold is not None
            and self.drift_embedding_threshold <= 0.5
        ):
            raise ValueError(
                "REFIT_DRIFT_EMBEDDING_THRESHOLD is a ROC AUC for domain_classifier: above 0.5"
            )
        return self


class MonitoringContext(TrainingContext, Protocol):
    """The sections drift checks and the prediction log read (besides training's)."""

    @property
    def monitoring(self) -> MonitoringSettings: ...

    @property
    def drift(self) -> DriftSettings: ...
