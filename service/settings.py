"""Settings owned by serving, and the one settings object that composes every section.

The composite lives here, at the top of the library's layers, because it is the
only place that may import every package's section; the BentoML service and the
CLI both start from it. Lower layers receive it typed by the sections they read
(`training.settings.TrainingContext`, `monitoring.settings.MonitoringContext`,
`retraining.settings.RetrainingContext`), or just the section they need.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from refit.core.settings import CoreSettings, Section
from refit.monitoring.settings import DriftSettings, MonitoringSettings
from refit.retraining.settings import RetrainingSettings
from refit.service.http.request_budget import MAX_REQUEST_BYTES, check_request_budget
from refit.training.settings import TrainingSettings

KIB = 1024


class ServingSettings(Section):
    """How `refit serve` binds, batches, bounds and guards requests."""

    host: str = "127.0.0.1"
    """Address `refit serve` binds."""
    port: int = Field(3000, ge=1, le=65535)
    """Port `refit serve` binds."""
    workers: int | None = Field(None, ge=1, le=64)
    """BentoML worker processes serving the model; default one per CPU core, at most 4."""
    torch_threads: int | None = Field(None, ge=1, le=256)
    """Intra-op threads per worker, for torch or ONNX Runtime, whichever serves; default is the
    CPU count divided by workers.
    """
    max_batch_size: int = Field(64, ge=1, le=4096)
    """Most texts in one forward pass, and in one scheduler round (no request holds more: see
    REFIT_MAX_TEXTS_PER_REQUEST); with REFIT_BATCHING=bentoml, most texts in one adaptive batch.
    """
    max_latency_ms: int = Field(2000, ge=10, le=60_000)
    """Latency budget: a request that the work queued ahead would keep waiting longer than this
    is refused at once with 429 and Retry-After, and one still queued this long after it arrived
    is dropped before any compute with 503 and Retry-After. Keep it well above one full pass's
    compute time. (With REFIT_BATCHING=bentoml, BentoML's batcher sheds with 503 past it.) At
    most a minute, and below REFIT_REQUEST_TIMEOUT_S: a longer queue only ends in 504s.
    """
    backend: Literal["auto", "torch", "torch-int8", "onnx", "onnx-int8"] = "auto"
    """Inference engine serving the model (docs/backends.md). auto: on a CPU, the fastest backend
    measured at registration whose labels agree with torch's on at least 99.5% of the version's
    test split and whose macro-F1 there is within 0.005 of torch's, else torch; on a GPU, torch.
    torch: PyTorch (REFIT_FORWARD_PASS says traced or eager). torch-int8: PyTorch with int8
    attention weights, CPU only. onnx: ONNX Runtime, fp32. onnx-int8: ONNX Runtime, the int8
    graph registration kept, with the fp32 graph beside it for close calls where registration
    chose that. A version registered before ONNX export is exported at its first
    load when its folder is writable (else `refit models export`); a backend that fails to load
    gives way to torch. /readyz, the front page, refit_model_info and each prediction-log record
    say which backend answered. Replaces REFIT_CPU_BACKEND (int8: use torch-int8).
    """
    forward_pass: Literal["traced", "eager"] = "traced"
    """How the torch backend runs the model: traced (one TorchScript call per forward pass, which
    lets go of Python's GIL once, so a busy event loop cannot stall it; checked against eager at
    load, and eager where the trace fails or differs), or eager (PyTorch op by op from Python).
    """
    max_batch_tokens: int = Field(16384, ge=64, le=65_536)
    """Most padded tokens (texts x the longest) in one forward pass; texts are sorted by length
    across requests and cut into passes that fit. At most 65,536 (a pass's activations grow
    with it: 512 texts of 128 tokens, the largest pass that paid on an H200).
    """
    max_texts_per_request: int = Field(64, ge=1, le=1024)
    """Most texts accepted in one /classify request. At most 1,024; at most REFIT_MAX_BATCH_SIZE,
    so that a request fits one scheduler round and a small request waits behind at most one
    round (the largest costs REFIT_MAX_BATCH_SIZE texts of at most max_length tokens: about 1 s
    of MiniLM at 64 x 128 tokens on 2 CPU cores); at most REFIT_MAX_IN_FLIGHT_TEXTS; and with
    REFIT_MAX_TEXT_CHARS at most 262,144 characters a request (their product): about 0.25 s of
    tokenising, on the model thread, and 3.1 MiB of JSON at most.
    """
    max_text_chars: int = Field(4000, ge=1, le=65_536)
    """Most characters accepted in one text. At most 65,536 (far past the 8,192 tokens a model
    reads; the whole text is still tokenised), and see REFIT_MAX_TEXTS_PER_REQUEST for their
    product.
    """
    tracing: bool = False
    """Open an OpenTelemetry span for every request (BentoML's tracing settings then say where
    spans go). Off by default: the span cost about a fifth of a worker's event-loop time on a
    fast model, whether or not anything collected it.
    """
    access_log: bool = False
    """Log one line per HTTP request (BentoML's access log); health checks and scrapes are never
    logged. Off by default: on the tiny-model proxy the line cost about 0.1 ms of the 1.2-1.4 ms
    a request held a worker's GIL (`bench/request_profile.py`), and the prediction log and
    Prometheus already record every `/classify` request.
    """
    batching: Literal["scheduler", "bentoml", "off"] = "scheduler"
    """How requests reach the model: refit's own scheduler (one queue and model thread per
    worker; texts of many requests sorted by length into forward passes, never a wait to fill
    a batch), or, as baselines for benchmarks, BentoML's adaptive batching, or each request
    alone.
    """
    max_in_flight_texts: int = Field(4096, ge=1, le=65_536)
    """Hard cap on texts a worker's scheduler holds, queued or computing (a memory bound), on top
    of the time bound of REFIT_MAX_LATENCY_MS; past it new requests get 429. At most 65,536,
    and with REFIT_MAX_TEXT_CHARS at most 64 Mi characters held (their product).
    """
    max_request_bytes: int | None = Field(None, ge=1024, le=MAX_REQUEST_BYTES)
    """Largest request body accepted; a larger one gets 413 before it is read. Default: what
    REFIT_MAX_TEXTS_PER_REQUEST texts of REFIT_MAX_TEXT_CHARS characters can take as JSON,
    escapes included (12 bytes a character at most), plus 64 KiB. At most what the largest
    allowed text limits take (3,211,264 bytes).
    """
    max_url_bytes: int = Field(8 * KIB, ge=256, le=64 * KIB)
    """Longest request target (path and query) accepted: a longer one gets 414 as it arrives,
    before it is buffered whole. At most REFIT_MAX_HEAD_BYTES.
    """
    max_header_bytes: int = Field(8 * KIB, ge=256, le=64 * KIB)
    """Longest single header line (name and value) accepted; a longer one gets 431. At most
    REFIT_MAX_HEAD_BYTES.
    """
    max_header_count: int = Field(100, ge=8, le=1000)
    """Most header lines in one request; past it, 431."""
    max_head_bytes: int = Field(16 * KIB, ge=1 * KIB, le=64 * KIB)
    """Largest request head (request line and every header) accepted: past it the connection
    gets 431 (or 414 while the URL is still arriving) and is closed, having buffered no more
    than this. nginx and HAProxy allow 8 to 16 KiB a buffer by default.
    """
    request_read_timeout_s: float = Field(10, gt=0, le=300)
    """A request whose head or body is still incomplete this long after the connection began
    sending it is answered 408 (body) or disconnected (head), so that half-sent requests do not
    hold sockets. At most 5 minutes.
    """
    request_timeout_s: float = Field(60, gt=0, le=600)
    """A request still unanswered after this gets a 504. At most 10 minutes."""

    reload_interval_s: float = Field(5.0, ge=0, le=3600)
    """How often each worker checks whether the champion changed and, if so, switches to it without
    a restart; 0 turns the check off.
    """
    admin_token: SecretStr | None = None
    """Bearer token for the /admin/ endpoints; unset (or blank), they answer 403."""
    feedback_token: SecretStr | None = None
    """Bearer token /feedback requires when set; unset (or blank), /feedback is open. Feedback
    labels become training data for the next model.
    """
    feedback_max_new_labels: int = Field(20, ge=0, le=1000)
    """Most distinct labels the serving model does not know that feedback may bring between
    retrains; feedback items with a further new label are refused (outcome `refused`). At most
    1,000 (each becomes a class of the next model).
    """

    @model_validator(mode="after")
    def _no_retired_cpu_backend(self) -> ServingSettings:
        # A deployment that still sets it would silently get another engine than it asked for.
        if "REFIT_CPU_BACKEND" in os.environ:
            raise ValueError(
                "REFIT_CPU_BACKEND is no longer read: set REFIT_BACKEND instead (torch for what "
                "fp32 gave, torch-int8 for int8, or auto: see docs/backends.md) and unset it"
            )
        return self

    @field_validator("admin_token", "feedback_token")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty or whitespace-only token would match a bare "Bearer " header.
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @model_validator(mode="after")
    def _one_request_fits_the_budget(self) -> ServingSettings:
        check_request_budget(self)
        return self

    def resolved_max_request_bytes(self) -> int:
        if self.max_request_bytes is not None:
            return self.max_request_bytes
        return self.max_texts_per_request * self.max_text_chars * 12 + 64 * 1024

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


SECTIONS: dict[str, type[Section]] = {
    "core": CoreSettings,
    "training": TrainingSettings,
    "serving": ServingSettings,
    "monitoring": MonitoringSettings,
    "drift": DriftSettings,
    "retraining": RetrainingSettings,
}


class Settings(BaseModel):
    """Every knob of refit, one section per package that owns it."""

    # extra="forbid": a flat dict passed to model_validate must fail, not be ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")

    core: CoreSettings
    training: TrainingSettings
    serving: ServingSettings
    monitoring: MonitoringSettings
    drift: DriftSettings
    retraining: RetrainingSettings

    def __init__(self, **values: Any) -> None:
        """Sections from the environment; keyword arguments named as the variables
        without `REFIT_` (`Settings(epochs=2)`) override single settings."""
        super().__init__(**_sections(values))

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with single settings replaced, named as in the constructor."""
        sections = {name: getattr(self, name) for name in SECTIONS}
        for name, updates in _route(values).items():
            current = sections[name]
            sections[name] = type(current).load(**{**current.model_dump(), **updates})
        return Settings(**sections)


def setting_names() -> dict[str, tuple[str, str]]:
    """Every setting's short name (`epochs`) -> (section, field)."""
    names: dict[str, tuple[str, str]] = {}
    for section, cls in SECTIONS.items():
        for field in cls.model_fields:
            short = cls.env_var(field).removeprefix("REFIT_").lower()
            names[short] = (section, field)
    return names


def _route(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    names = setting_names()
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")
    routed: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        section, field = names[key]
        routed.setdefault(section, {})[field] = value
    return routed


def _sections(values: dict[str, Any]) -> dict[str, Any]:
    # Whole sections pass through; single settings build their section from the
    # environment with the override on top, so the other variables still apply.
    # REFIT_MONITORING shares its short name with the monitoring section: a section
    # is recognised by its type.
    given = {k: v for k, v in values.items() if isinstance(v, SECTIONS.get(k, ()))}
    singles = {k: v for k, v in values.items() if k not in given}
    for name, updates in _route(singles).items():
        given[name] = SECTIONS[name].load(**updates)
    for name, cls in SECTIONS.items():
        if name not in given:
            given[name] = cls.load()
    return given


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; ConfigError naming each invalid variable."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings so the next `get_settings()` re-reads the environment."""
    get_settings.cache_clear()
