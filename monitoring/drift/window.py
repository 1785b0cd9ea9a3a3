"""Window strings (30m, 1h, 2d, 1w; 10s for short watch intervals) and the time range they cover."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN: Final = re.compile(r"([1-9][0-9]*)([smhdw])")


def parse_window(text: str) -> timedelta:
    """`10s`, `30m`, `1h`, `2d` or `1w` as a timedelta; ValueError for anything else."""
    match = _PATTERN.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(
            f"window {text!r} is not a whole number followed by s, m, h, d or w (e.g. 30m, 1h, 2d)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def format_window(window: timedelta) -> str:
    """The shortest window string for `window` (whole minutes), e.g. 90 min -> `90m`."""
    minutes = int(window.total_seconds() // 60)
    for unit, size in (("w", 10080), ("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def window_range(window: timedelta, end: datetime | None = None) -> tuple[datetime, datetime]:
    """(start, end) in UTC; `end` defaults to now, a naive `end` is taken as UTC."""
    if end is None:
        end = datetime.now(UTC)
    elif end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return end - window, end
