"""Where the BentoML model store lives: optionally in a shared folder, apart from BENTOML_HOME.

BentoML 1.4 always keeps its model store in `$BENTOML_HOME/models` and has no setting
that moves it. BENTOML_HOME also holds BentoML's Prometheus multiprocess folder, which
every `bentoml serve` empties at start, so replicas must not share one BENTOML_HOME.
With `REFIT_MODEL_STORE` set, `$BENTOML_HOME/models` is made a symbolic link to that
folder: every replica keeps its own BENTOML_HOME and all of them, and every training
job, see one store.

Every `refit` command and every server process (the service module at import) links
before it touches the store; BentoML keeps the store as a path, not an open folder, so
a link made after BentoML created an empty `models` folder is followed from then on.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from refit.core.compat.bentoml import model_store_folder
from refit.core.errors import ConfigError
from refit.core.settings import CoreSettings, bentoml_home

_ATTEMPTS = 5  # rounds against other processes linking at the same moment


def link_model_store(core: CoreSettings) -> Path | None:
    """Make `$BENTOML_HOME/models` a link to `core.model_store`; the link, or None if unset.

    Creates the shared folder. Replaces an empty `models` folder (BentoML creates one
    at import) or a link elsewhere; refuses a `models` folder that holds anything, which
    would otherwise be hidden. Idempotent, and safe when the workers of a server start
    together: whoever loses a race finds the link the winner made.
    """
    if core.model_store is None:
        return None
    target = Path(os.path.abspath(core.model_store.expanduser()))
    link = model_store_folder(bentoml_home())
    try:
        target.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"REFIT_MODEL_STORE: cannot create {target}: {exc}") from exc
    if not link.is_symlink() and link.resolve() == target.resolve():
        return link  # `models` already is that folder (REFIT_MODEL_STORE=$BENTOML_HOME/models)
    for _ in range(_ATTEMPTS):
        if _links_to(link, target):
            return link
        _clear_the_way(link, target)
        try:
            _replace_with_link(link, target)
        except FileExistsError:
            continue  # another process was quicker: look again
    if _links_to(link, target):
        return link
    raise ConfigError(f"REFIT_MODEL_STORE: could not link {link} to {target}")


def _links_to(link: Path, target: Path) -> bool:
    if not link.is_symlink():
        return False
    pointed = Path(os.path.normpath(os.path.join(link.parent, os.readlink(link))))
    return pointed == target or pointed.resolve() == target.resolve()


def _clear_the_way(link: Path, target: Path) -> None:
    """Remove an empty `models` folder; refuse anything else that is not a link.

    Other processes may remove the folder or put their link there at any moment between
    two of these steps: each step that finds the way already changed returns."""
    try:
        mode = link.lstat().st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        return
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"REFIT_MODEL_STORE: {link} is a file; remove it to use {target}")
    try:
        holds_something = any(link.iterdir())
    except FileNotFoundError:
        return  # another process removed it first
    if holds_something and not link.is_symlink():  # a link now lists the target's files
        raise ConfigError(
            f"REFIT_MODEL_STORE is {target}, but {link} already holds a model store; "
            f"move its contents into {target} (or unset REFIT_MODEL_STORE)"
        )
    try:
        link.rmdir()
    except FileNotFoundError:
        return  # another process removed it first
    except OSError as exc:
        if link.is_symlink():  # replaced by another process's link meanwhile
            return
        raise ConfigError(f"REFIT_MODEL_STORE: cannot replace {link}: {exc}") from exc


def _replace_with_link(link: Path, target: Path) -> None:
    """Put a link to `target` at `link` in one step (a link elsewhere is replaced)."""
    if not link.is_symlink():
        os.symlink(target, link, target_is_directory=True)  # FileExistsError on a race
        return
    staged = link.with_name(f".models-{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    os.symlink(target, staged, target_is_directory=True)
    os.replace(staged, link)
