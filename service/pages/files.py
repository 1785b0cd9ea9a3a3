"""Which files the front page may serve: drift reports and model cards, nothing else.

A requested name is first matched against the only shape such a file has (no
slash, no dot-dot, no absolute path can match), then resolved, links included,
and served only if it is still a file directly inside its folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from bentoml.exceptions import BentoMLException

from refit.core.errors import RefitError
from refit.core.registry import Registry

# `drift-<UTC time>-<model version>.{html,json}`, as monitoring.drift.history names them.
REPORT_NAME: Final = re.compile(r"drift-\d{8}T\d{6}Z-[A-Za-z0-9_-]{1,128}\.(?:html|json)")
# A BentoML model version, without the dots a tag may hold.
VERSION_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,126}[a-z0-9])?")
MODEL_CARD: Final = "model_card.md"


def inside(folder: Path, name: str) -> Path | None:
    """`folder/name` if it resolves to a file directly inside `folder`, else None."""
    try:
        base = folder.resolve(strict=True)
        path = (base / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return path if path.parent == base and path.is_file() else None


def report_file(folder: Path, name: str) -> Path | None:
    """The drift report or summary `name` in the reports `folder`; None if not one."""
    if REPORT_NAME.fullmatch(name) is None:
        return None
    return inside(folder, name)


def model_card(registry: Registry, version: str) -> Path | None:
    """The model card of a registered version of the registry's model; None otherwise."""
    if VERSION_NAME.fullmatch(version) is None:
        return None
    try:
        found = registry.get(version)
    except (RefitError, BentoMLException, ValueError):
        return None
    if found.version != version:  # an alias such as "latest"
        return None
    return inside(found.path, MODEL_CARD)
