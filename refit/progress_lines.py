"""Progress as dated lines, for output that is not a terminal (a log file, a pipe).

A rich progress bar redraws itself in place; written to a file it appears once, at the
end. Here each line stands alone, is flushed as it is written and starts with the UTC
time, e.g. ``2026-11-30T16:40:12Z fine-tuning 5% (40/800 steps) loss 1.2034,
0:00:36 elapsed, about 0:11:24 left``: one line at the start, then at most one each
time another 5% of the work is done, and one at every epoch end.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

from rich.console import Console

from refit.training.epochs import EpochRecord
from refit.training.scores import format_metric

STEP_PERCENT = 5


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class DatedLines:
    """Writes `what` progress lines to a console's file, every `STEP_PERCENT` percent."""

    def __init__(self, console: Console, what: str, unit: str) -> None:
        self.console = console
        self.what = what
        self.unit = unit
        self._started = time.monotonic()
        self._last_bucket = -1
        self._last_done = -1

    def write(self, text: str) -> None:
        """One dated line, flushed at once (plain text: no markup, no wrapping)."""
        self.console.file.write(f"{stamp()} {text}\n")
        self.console.file.flush()

    def due(self, done: int, total: int) -> bool:
        """Whether `done` of `total` starts a new 5% step (or finishes the work)."""
        if total <= 0 or done == self._last_done:
            return False
        bucket = min(done * 100 // total, 100) // STEP_PERCENT
        return bucket > self._last_bucket or done >= total

    def progress(self, done: int, total: int, detail: str = "") -> None:
        """Write the progress line for `done` of `total`, whether due or not."""
        self._last_bucket = min(done * 100 // max(total, 1), 100) // STEP_PERCENT
        self._last_done = done
        elapsed = time.monotonic() - self._started
        timing = f"{_duration(elapsed)} elapsed"
        if 0 < done < total:
            timing += f", about {_duration(elapsed * (total - done) / done)} left"
        percent = done * 100 // max(total, 1)
        extra = f" {detail}," if detail else ","
        self.write(f"{self.what} {percent}% ({done}/{total} {self.unit}){extra} {timing}")

    def update(self, done: int, total: int) -> None:
        """(done, total) callback: a line whenever one is due."""
        if self.due(done, total):
            self.progress(done, total)


class TrainingLog(AbstractContextManager["TrainingLog"]):
    """The training loop's progress (`training.epochs.Progress`) as dated lines."""

    def __init__(self, console: Console) -> None:
        self._lines = DatedLines(console, "fine-tuning", "steps")
        self._total = 0
        self._done = 0
        self._losses: list[float] = []

    def __exit__(self, *exc_info: object) -> None:
        return None

    def start(self, total_steps: int) -> None:
        self._total = total_steps
        self._lines.progress(0, total_steps)

    def step(self, loss: float) -> None:
        self._done += 1
        self._losses.append(loss)
        if self._lines.due(self._done, self._total):
            self._write_progress()

    def _write_progress(self) -> None:
        """The progress line; the loss is the mean since the previous line."""
        loss = sum(self._losses) / len(self._losses) if self._losses else None
        self._lines.progress(self._done, self._total, f"loss {format_metric('loss', loss)}")
        self._losses = []

    def epoch_done(self, record: EpochRecord) -> None:
        if self._losses:
            self._write_progress()
        self._lines.write(epoch_line(record))


def epoch_line(record: EpochRecord) -> str:
    """What an epoch ended with, on a terminal and in a log alike."""
    return (
        f"epoch {record.epoch}: train loss {format_metric('train_loss', record.train_loss)}, "
        f"validation loss {format_metric('validation_loss', record.validation_loss)}, "
        "validation macro-F1 "
        f"{format_metric('validation_macro_f1', record.validation_macro_f1)} "
        f"({record.seconds:.0f} s)"
    )
