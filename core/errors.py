"""The root of refit's error hierarchy.

Every error refit raises on purpose derives from `RefitError`. The classes here
know nothing about HTTP; `service.errors` maps each one to a status code in one
table, so a training failure surfaces with the same meaning on the CLI and over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Long lists of problems are cut in messages; the full list stays on the exception.
_SHOWN_PROBLEMS = 20


class RefitError(Exception):
    """Base of all errors refit raises deliberately."""


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

    def __init__(self, problems: Sequence[DataProblem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:_SHOWN_PROBLEMS])
        more = len(self.problems) - _SHOWN_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} data {noun}:\n{shown}{tail}")


class ModelNotFoundError(RefitError):
    """No model (or no such version) is registered."""


class ModelLoadError(RefitError):
    """A registered model version is corrupt or incompatible and cannot be served."""


class TrainingError(RefitError):
    """Fine-tuning could not produce a model."""
