"""The scheduler's state file: what `refit watch` last did and will do next.

Kept apart from `retraining.schedule` so that the service can export it as gauges
without importing the drift check (and Evidently with it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from refit.core.atomic_file import write_atomic
from refit.core.settings import CoreSettings


@dataclass
class WatchState:
    last_check: str | None = None
    last_status: str | None = None
    last_decision: str | None = None
    last_reasons: list[str] = field(default_factory=list)
    next_run: str | None = None
    checks: int = 0
    failures: int = 0
    retrains: int = 0

    @classmethod
    def load(cls, path: Path) -> WatchState:
        try:
            return cls(**json.loads(path.read_text()))
        except (FileNotFoundError, json.JSONDecodeError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(asdict(self), indent=2))


def state_path(core: CoreSettings) -> Path:
    return core.resolved_state_dir() / "watch" / "state.json"
