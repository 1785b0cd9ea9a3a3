"""refit's one error hierarchy.

Every error refit raises on purpose derives from `RefitError` and is declared here,
whatever layer raises it. Each class carries the HTTP status it is answered with and
the reason it is counted under in `refit_request_errors_total`; `service.http.errors`
reads both to build the response, so a failure means the same on the CLI and over
HTTP. A subclass inherits its parent's status and reason unless it sets its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

# Long lists of problems are cut in messages; the full list stays on the exception.
_SHOWN_PROBLEMS = 20


# The values of the `reason` label of refit_request_errors_total.
ERROR_REASONS = ("validation", "overload", "model", "timeout", "other")


class RefitError(Exception):
    """Base of all errors refit raises deliberately."""

    status: ClassVar[int] = 500
    reason: ClassVar[str] = "other"
    # Seconds after which a retry may succeed, when the error can say.
    retry_after_s: int | None = None


def reason_for_status(status: int) -> str | None:
    """The error reason of a response refit did not raise itself (BentoML's own 400s,
    timeouts); None for success."""
    if status < 400:
        return None
    if status in (400, 408, 413, 415, 422):
        return "validation"
    if status in (429, 503):
        return "overload"
    if status == 504:
        return "timeout"
    if status == 500:
        return "model"
    return "other"


class ConfigError(RefitError):
    """A setting or option has a value refit cannot work with."""


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong with a data file, located as precisely as possible."""

    source: str
    message: str
    row: int | None = None
    # How the user counts rows in this source: "row", "line" (JSONL, and CSV where
    # the header is line 1) or "record" (Parquet).
    unit: str = "row"

    def __str__(self) -> str:
        where = self.source if self.row is None else f"{self.source}, {self.unit} {self.row}"
        return f"{where}: {self.message}"


class DataValidationError(RefitError):
    """Labelled data cannot be used as given; `problems` says where and why."""

    status = 422
    reason = "validation"

    def __init__(self, problems: Sequence[DataProblem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:_SHOWN_PROBLEMS])
        more = len(self.problems) - _SHOWN_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} data {noun}:\n{shown}{tail}")


class MalformedRequest(RefitError):
    """A request whose head HTTP itself forbids, such as two Content-Type headers."""

    status = 400
    reason = "validation"


class ConfusableLabel(RefitError):
    """A feedback label that looks like an existing label but is not it (another script's
    letters, full-width forms, letter case); nothing of the request is stored."""

    status = 422
    reason = "validation"


class RequestTooLarge(RefitError):
    """A request body over REFIT_MAX_REQUEST_BYTES, refused before it is read."""

    status = 413
    reason = "validation"


class UnsupportedMediaType(RefitError):
    """A request body that is not JSON."""

    status = 415
    reason = "validation"


class RequestTimeout(RefitError):
    """A request whose body did not arrive within REFIT_REQUEST_READ_TIMEOUT_S."""

    status = 408
    reason = "validation"


class ResponseTimeout(RefitError):
    """A request whose response had not started within REFIT_REQUEST_TIMEOUT_S."""

    status = 504
    reason = "timeout"


class ModelNotFoundError(RefitError):
    """No model (or no such version) is registered."""

    status = 404


class ModelLoadError(RefitError):
    """A registered model version is corrupt or incompatible and cannot be served."""

    status = 409


class NoReferenceProfile(RefitError):
    """A model version has no reference profile (it predates drift checks)."""

    status = 409


class TrainingError(RefitError):
    """Fine-tuning could not produce a model."""


class BackendExportError(RefitError):
    """A model version cannot be exported to another inference backend (ONNX) where it
    is stored (a read-only model store)."""

    status = 409


class Busy(RefitError):
    """Another drift check or retrain holds the lock."""

    status = 409


class PredictionLogUnavailable(RefitError):
    """The prediction log's database could not be read or written."""

    status = 503
    reason = "overload"


class Unauthorized(RefitError):
    """A protected endpoint was called without credentials."""

    status = 401


class Forbidden(RefitError):
    """The credentials sent do not allow this call (or the endpoint is disabled)."""

    status = 403


class RetryLater(RefitError):
    """A request refused for now; `retry_after_s` says when to come back."""

    status = 503
    reason = "overload"
    retry_after_s: int  # always known here

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(f"{message}; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class Overloaded(RetryLater):
    """Refused on arrival: the worker cannot take the request within its latency budget."""

    status = 429

    def __init__(self, retry_after_s: int, cause: str = "over_budget") -> None:
        super().__init__(f"the server is at capacity ({cause})", retry_after_s)
        self.cause = cause


class DeadlineExpired(RetryLater):
    """Admitted, but it waited past its deadline and was dropped uncomputed."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("waited past the latency budget, not run", retry_after_s)


class SchedulerClosed(RefitError):
    """The worker is shutting down; another worker or replica can serve the request."""

    status = 503
    reason = "overload"
    retry_after_s = 1


class ModelFailure(RefitError):
    """The forward pass holding this request raised; the server log has the traceback."""

    status = 500
    reason = "model"


class NonFiniteScores(ModelFailure):
    """The model gave a score that is not a finite number (NaN or inf) for this request:
    answered 500, never with the score, and the version flagged."""
