"""The retraining audit log: every decision, "no action" and failures included.

An append-only JSON-lines file in the state folder; `refit retrain history` and
the service's front page read it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from refit.core.atomic_file import append_line
from refit.core.settings import CoreSettings


def audit_path(core: CoreSettings) -> Path:
    return core.resolved_state_dir() / "retraining" / "audit.jsonl"


class AuditLog:
    def __init__(self, core: CoreSettings) -> None:
        self.path = audit_path(core)

    def append(self, event: str, **details: Any) -> dict[str, Any]:
        record = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event}
        record.update(details)
        append_line(self.path, json.dumps(record, default=str))
        return record

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def last_retrain(self) -> datetime | None:
        times = [r["time"] for r in self.read() if r["event"] == "retrain"]
        return datetime.fromisoformat(times[-1]) if times else None
