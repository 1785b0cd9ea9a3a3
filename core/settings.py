"""The one settings object of refit, read from `REFIT_*` environment variables.

It lives in `training`, the lowest layer, because every layer reads it and the
layering rule (service -> monitoring -> training) lets everyone import from here.
Nothing is read at import time: call `get_settings()` where a value is needed.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BASE_MODEL = "packaged:all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every knob of refit. Each field is `REFIT_<FIELD NAME>` in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="REFIT_", env_file=None, extra="ignore", validate_default=True
    )

    # --- where things live -------------------------------------------------
    state_dir: Path | None = Field(
        default=None,
        description="Folder for refit's own state (champion pointer, reports). "
        "Defaults to `refit/` inside the BentoML home, so that one BENTOML_HOME "
        "holds a consistent model store and champion.",
    )
    model_name: str = Field(
        default="refit-classifier",
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="Name of the model in the BentoML model store; every training run "
        "adds a version of it.",
    )

    # --- data ----------------------------------------------------------------
    text_column: str = Field(default="text", description="Column holding the input text.")
    label_column: str = Field(default="label", description="Column holding the class label.")
    min_examples_per_class: int = Field(
        default=10, ge=2, description="A class with fewer labelled rows is refused."
    )
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=0.5, description="Share of rows held out for model selection."
    )
    test_fraction: float = Field(
        default=0.1, gt=0, lt=0.5, description="Share of rows held out for the final report."
    )
    generated_rows: int = Field(
        default=5000,
        ge=200,
        description="Rows of the built-in customer-support dataset used when no data "
        "file is given.",
    )

    # --- fine-tuning ---------------------------------------------------------
    base_model: str = Field(
        default=DEFAULT_BASE_MODEL,
        description="Model to fine-tune: the packaged all-MiniLM-L6-v2 (default), a local "
        "Hugging Face model folder, or a hub id (needs network).",
    )
    epochs: int = Field(default=3, ge=1, le=100, description="Passes over the training split.")
    learning_rate: float = Field(default=1e-4, gt=0, lt=1, description="Peak AdamW learning rate.")
    batch_size: int = Field(default=32, ge=1, le=4096, description="Training batch size.")
    max_length: int = Field(
        default=128, ge=8, le=8192, description="Tokens kept per text; longer texts are truncated."
    )
    seed: int = Field(default=42, description="Seed for splits, shuffling and initialisation.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where to train and serve; auto picks CUDA when present."
    )

    # --- serving -------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address `refit serve` binds.")
    port: int = Field(default=3000, ge=1, le=65535, description="Port `refit serve` binds.")
    workers: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="BentoML worker processes serving the model; default one per CPU core, "
        "at most 4.",
    )
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description="Intra-op threads per worker; default is the CPU count divided by workers.",
    )
    max_batch_size: int = Field(
        default=64, ge=1, le=4096, description="Most texts one adaptive batch may hold."
    )
    max_latency_ms: int = Field(
        default=2000,
        ge=10,
        description="Queueing budget: a request arriving when the accepted work would take "
        "longer than this gets 429 with Retry-After; BentoML's batcher sheds (503) at twice "
        "it. Keep it well above one full batch's compute time.",
    )
    cpu_backend: Literal["fp32", "int8"] = Field(
        default="fp32",
        description="Weights used when serving on a CPU: fp32, or int8 (dynamic "
        "quantization: faster; run bench/int8_bench.py to measure its label agreement "
        "with fp32 on your test split before turning it on).",
    )
    max_batch_tokens: int = Field(
        default=16384,
        ge=64,
        description="Most padded tokens in one forward pass; a larger adaptive batch is "
        "cut into length buckets that fit.",
    )
    max_texts_per_request: int = Field(
        default=64, ge=1, le=4096, description="Most texts accepted in one /classify request."
    )
    max_text_chars: int = Field(
        default=4000, ge=1, le=1_000_000, description="Most characters accepted in one text."
    )
    access_log: bool = Field(
        default=True,
        description="Log one line per HTTP request (BentoML's access log); health checks "
        "and scrapes are never logged.",
    )
    adaptive_batching: bool = Field(
        default=True,
        description="Batch texts across concurrent requests; off serves each request alone "
        "(a baseline for benchmarks).",
    )
    max_in_flight_texts: int = Field(
        default=4096,
        ge=1,
        description="Hard cap on texts a worker holds (memory bound), on top of the "
        "time-based bound of max_latency_ms; past it new requests get 429.",
    )
    request_timeout_s: float = Field(
        default=60, gt=0, description="A request still unanswered after this gets a 504."
    )

    reload_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="How often each worker checks whether the champion changed and, if so, "
        "switches to it without a restart; 0 turns the check off.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for the /admin/ endpoints; unset, they answer 403.",
    )

    # --- monitoring ----------------------------------------------------------
    monitoring: bool = Field(
        default=True,
        description="Record refit's metrics and the prediction log; off leaves only "
        "BentoML's own metrics (for measuring what monitoring costs).",
    )
    hourly_price_usd: float | None = Field(
        default=None,
        ge=0,
        description="Hourly price of the serving machine, for the cost metrics. Default: "
        "0.10 on CPU (a 2-vCPU instance), 4.00 on GPU (a one-GPU H100-class instance).",
    )
    prediction_log_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the prediction log: `sqlite:///path` (default: "
        "predictions.sqlite3 in the state folder) or `postgresql+psycopg://...` when "
        "several replicas share one log.",
    )
    log_sample_rate: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of predictions written to the log, chosen by a hash of the "
        "prediction id so that every replica samples alike.",
    )
    log_text: Literal["raw", "redacted", "hashed"] = Field(
        default="raw",
        description="What the log keeps of each text: the text itself, the text with "
        "e-mail addresses, phone numbers, card-like and other long digit runs masked, or "
        "only its SHA-256.",
    )
    log_retention_days: float = Field(
        default=30, gt=0, description="Log records older than this are deleted."
    )
    log_queue_size: int = Field(
        default=20000,
        ge=100,
        description="Most prediction records waiting to be written; past it records are "
        "dropped and counted, and serving goes on.",
    )
    log_flush_interval_ms: int = Field(
        default=20, ge=1, le=10000, description="Longest a record waits before a write."
    )
    log_confirm_timeout_s: float = Field(
        default=2.0,
        ge=0,
        description="Longest a response waits for its predictions to be written before it "
        "is sent anyway (and the delay counted).",
    )

    # --- drift checks ----------------------------------------------------------
    drift_window: str = Field(
        default="1h",
        pattern=r"^[1-9][0-9]*[mhdw]$",
        description="Window of recent predictions a drift check compares with the "
        "reference profile: minutes, hours, days or weeks, e.g. 30m, 1h, 2d, 1w.",
    )
    drift_min_window_size: int = Field(
        default=200,
        ge=20,
        description="Below this many logged predictions in the window a drift check "
        "reports 'not enough data' instead of a verdict.",
    )
    drift_max_rows: int = Field(
        default=20000,
        ge=500,
        description="Most current-window rows the Evidently report compares; a larger "
        "window is sampled down to this (uniformly, seeded). Window size, the accuracy "
        "estimate and feedback accuracy always use every row.",
    )
    drift_reference_rows: int = Field(
        default=3000,
        ge=100,
        le=20000,
        description="Size of each sample in the reference profile written with each new "
        "model version: a uniform sample of the labelled data (for the texts) and one of "
        "the held-out rows (for the model's outputs and the calibration).",
    )
    drift_numeric_method: Literal["ks", "wasserstein", "psi", "anderson", "mannw"] = Field(
        default="ks",
        description="Evidently method for the text descriptors and the confidence: a "
        "p-value (ks, anderson, mannw: drift below the threshold) or a distance "
        "(wasserstein, psi: drift above it).",
    )
    drift_numeric_threshold: float = Field(
        default=0.001,
        gt=0,
        description="Threshold of drift_numeric_method for each descriptor and the confidence.",
    )
    drift_label_method: Literal["chi2_homogeneity", "chisquare", "jensenshannon", "psi"] = Field(
        default="chi2_homogeneity",
        description="Evidently method for the predicted-label distribution: "
        "chi2_homogeneity (refit's two-sample chi-square test, a p-value), chisquare "
        "(Evidently's goodness of fit to the reference's shares, which takes the "
        "reference's sampling noise for drift on large windows) or a distance "
        "(jensenshannon, psi).",
    )
    drift_label_threshold: float = Field(
        default=0.001, gt=0, description="Threshold of drift_label_method."
    )
    drift_text_threshold: float = Field(
        default=0.57,
        gt=0.5,
        lt=1,
        description="ROC AUC of Evidently's text domain classifier (TF-IDF, reference vs "
        "current) above which the raw texts have drifted.",
    )
    drift_embedding_threshold: float = Field(
        default=0.6,
        gt=0.5,
        lt=1,
        description="ROC AUC of Evidently's embedding domain classifier above which the "
        "model's embeddings have drifted.",
    )

    # --- retraining --------------------------------------------------------------
    watch_interval: str = Field(
        default="15m",
        pattern=r"^[1-9][0-9]*[smhdw]$",
        description="How often `refit watch` checks drift (30m, 1h, ...), unless watch_cron.",
    )
    watch_cron: str | None = Field(
        default=None,
        description="Cron expression for `refit watch` instead of the interval, e.g. "
        "'*/15 * * * *' (UTC).",
    )
    retrain_after_drift_checks: int = Field(
        default=2,
        ge=1,
        description="Retrain when this many consecutive drift checks found drift.",
    )
    retrain_accuracy_floor: float = Field(
        default=0.80,
        ge=0,
        le=1,
        description="Retrain when accuracy (actual, from feedback, where a check has enough; "
        "else estimated) falls below this.",
    )
    retrain_cooldown_hours: float = Field(
        default=6, ge=0, description="No new retrain this soon after the last one."
    )
    retrain_from: Literal["champion", "base"] = Field(
        default="champion",
        description="Fine-tune the challenger from the champion's weights or from base_model.",
    )
    retrain_min_rows: int = Field(
        default=50,
        ge=10,
        description="Fewest new labelled rows (feedback and incoming files) worth a retrain.",
    )
    retrain_holdout_fraction: float = Field(
        default=0.3,
        gt=0,
        lt=0.6,
        description="Share of the new labelled rows held out to compare challenger and champion.",
    )
    gate_min_gain: float = Field(
        default=0.02,
        description="Macro-F1 the challenger must gain over the champion on the held-out "
        "recent data to be promoted.",
    )
    gate_max_loss: float = Field(
        default=0.01,
        ge=0,
        description="Most macro-F1 the challenger may lose on the original test split.",
    )
    gate_max_latency_ratio: float = Field(
        default=1.5,
        gt=0,
        description="Most the challenger's time on a fixed batch may be, as a multiple of "
        "the champion's.",
    )

    @field_validator("base_model")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a model: a folder, a hub id, or " + DEFAULT_BASE_MODEL)
        return value.strip()

    @model_validator(mode="after")
    def _splits_leave_training_data(self) -> Settings:
        if self.validation_fraction + self.test_fraction >= 0.6:
            raise ValueError(
                "validation_fraction + test_fraction must stay below 0.6 so that most "
                "rows are left for training"
            )
        return self

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        return bentoml_home() / "refit"

    def resolved_log_url(self) -> str:
        if self.prediction_log_url:
            return self.prediction_log_url
        return f"sqlite:///{self.resolved_state_dir() / 'predictions.sqlite3'}"

    def resolved_workers(self) -> int:
        # On 2 cores, two single-threaded workers served 1.2x the requests of one with
        # two threads (bench/serve_bench.py): HTTP, JSON and tokenisation are Python
        # work that one process cannot overlap with the model. Beyond 4, memory grows
        # with every copy of the model for gains not measured here.
        if self.workers is not None:
            return self.workers
        return max(1, min(os.cpu_count() or 1, 4))

    def resolved_torch_threads(self) -> int:
        if self.torch_threads is not None:
            return self.torch_threads
        return max(1, (os.cpu_count() or 1) // self.resolved_workers())


def bentoml_home() -> Path:
    """BentoML's home folder, as BentoML itself resolves it."""
    return Path(os.environ.get("BENTOML_HOME", Path.home() / "bentoml")).expanduser()


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings so the next `get_settings()` re-reads the environment."""
    get_settings.cache_clear()
