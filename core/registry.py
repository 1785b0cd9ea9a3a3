"""Model versions in the BentoML model store, and which one is champion.

Every training run adds a version of one named model to BentoML's store, so
`bentoml build` can package it and `bentoml models list` shows it. The store has
no notion of "the version to serve", so the champion is a small JSON pointer in
refit's state folder, next to an append-only log of every promotion. Writers
hold a file lock, so concurrent promotions from several processes cannot
interleave; readers see either the old or the new pointer (atomic replace).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import NotFound
from filelock import FileLock

from refit.core.atomic_file import write_atomic
from refit.core.errors import ModelNotFoundError
from refit.core.settings import CoreSettings
from refit.core.version_check import check_version_files as check_version_files  # re-exported
from refit.core.version_check import prove_loadable


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    path: Path
    created: datetime
    metadata: dict[str, Any]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def labels(self) -> list[str]:
        return list(self.metadata.get("labels", []))

    def max_length(self, default: int) -> int:
        """Tokens per text the version was trained with (`default` for older versions)."""
        return int(self.metadata.get("max_length", default))

    def read_json(self, filename: str) -> Any:
        return json.loads((self.path / filename).read_text())


class Registry:
    """Versions of one named model, and its champion."""

    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.state_dir = state_dir / "models" / name
        self._pointer = self.state_dir / "champion.json"
        self._history = self.state_dir / "promotions.jsonl"

    @classmethod
    def from_settings(cls, core: CoreSettings) -> Registry:
        return cls(core.model_name, core.resolved_state_dir())

    # --- reading -------------------------------------------------------------
    def versions(self) -> list[ModelVersion]:
        """All versions, newest first."""
        try:
            found = [_to_version(m) for m in bentoml.models.list(self.name)]
        except NotFound:
            return []
        return sorted(found, key=lambda v: v.created, reverse=True)

    def get(self, version: str | None = None) -> ModelVersion:
        """A version by its id (or "latest"); the champion when `version` is None."""
        if version is None:
            champion = self.champion()
            if champion is None:
                raise ModelNotFoundError(
                    f"no champion for model {self.name!r}; train one with `refit train`"
                )
            return champion
        try:
            return _to_version(bentoml.models.get(f"{self.name}:{version}"))
        except NotFound as exc:
            raise ModelNotFoundError(
                f"model {self.name!r} has no version {version!r}; `refit models list` shows them"
            ) from exc

    def champion_tag(self) -> str | None:
        try:
            return json.loads(self._pointer.read_text())["tag"]
        except FileNotFoundError:
            return None

    def serving_tag(self) -> str:
        """The tag to serve: the champion, else the newest version.

        Inside a built Bento there is no champion pointer, only the packaged
        version, which is then the newest.
        """
        tag = self.champion_tag()
        if tag is not None:
            return tag
        versions = self.versions()
        if not versions:
            raise ModelNotFoundError(
                f"model {self.name!r} has no registered version; run `refit train` first "
                "(or `refit serve --train-if-missing`)"
            )
        return versions[0].tag

    def champion(self) -> ModelVersion | None:
        tag = self.champion_tag()
        if tag is None:
            return None
        return self.get(tag.split(":", 1)[1])

    def history(self) -> list[dict[str, Any]]:
        if not self._history.exists():
            return []
        return [json.loads(line) for line in self._history.read_text().splitlines() if line]

    # --- writing -------------------------------------------------------------
    def register(
        self,
        write: Callable[[Path], object],
        *,
        metadata: dict[str, Any],
        labels: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Add a version whose files `write(folder)` puts in place."""
        with bentoml.models.create(self.name, metadata=metadata, labels=labels or {}) as model:
            folder = Path(model.path)
            write(folder)
            prove_loadable(folder, str(model.tag))  # refused: the version is discarded
            # Weights are written 0600; a server under another user must read them.
            for item in folder.rglob("*"):
                item.chmod(0o755 if item.is_dir() else 0o644)
        return self.get(model.tag.version)

    def promote(self, version: str, *, reason: str, actor: str = "user") -> ModelVersion:
        """Make `version` the champion and log the decision, once it is proven to load."""
        target = self.get(version)
        prove_loadable(target.path, target.tag)
        with self._locked():
            previous = self.champion_tag()
            write_atomic(self._pointer, json.dumps({"tag": target.tag}))
            event = {
                "time": datetime.now(UTC).isoformat(),
                "tag": target.tag,
                "previous": previous,
                "reason": reason,
                "actor": actor,
            }
            with self._history.open("a") as log:
                log.write(json.dumps(event) + "\n")
        return target

    def rollback(self, *, reason: str = "rollback", actor: str = "user") -> ModelVersion:
        """Undo the latest promotion: the champion before it serves again."""
        history = self.history()
        previous = history[-1]["previous"] if history else None
        if previous is None:
            raise ModelNotFoundError(f"model {self.name!r} has no earlier champion to roll back to")
        return self.promote(previous.split(":", 1)[1], reason=reason, actor=actor)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.state_dir / ".lock"), timeout=30):
            yield


def _to_version(model: bentoml.Model) -> ModelVersion:
    return ModelVersion(
        name=model.tag.name,
        version=str(model.tag.version),
        path=Path(model.path),
        created=model.creation_time,
        metadata=dict(model.info.metadata),
    )
