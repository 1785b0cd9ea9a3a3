"""Export and verify versions registered before refit did it at registration.

At a version's first load (`ensure_exported`, called where a server worker or the
retraining gate loads a version): when it has no `backends.json`, export is on
(REFIT_EXPORT_BACKENDS), a backend other than torch may serve it (REFIT_BACKEND auto,
onnx or onnx-int8) and it runs on a CPU, it is exported and verified as registration
would (`backend_export.export_and_verify`), provided its folder is writable; otherwise
torch serves it and one log line says why. `refit models export` does the same
ahead of time, or again (`export_version`).

Workers of one server start together: a lock per version folder lets one of them
export while the others wait for its record, then load it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Final

from filelock import FileLock

from refit.core.backends.loading import BackendOptions, resolved_device
from refit.core.backends.record import BackendRecord, read_record
from refit.core.errors import BackendExportError

logger = logging.getLogger(__name__)

_LOCK_TIMEOUT_S: Final = 900  # another process exporting MiniLM takes about a minute
# Settings under which a version without a record is exported at its first load.
EXPORTED_AT_LOAD: Final = ("auto", "onnx", "onnx-int8")


def export_version(
    folder: Path, tag: str, *, max_length: int, force: bool = False
) -> BackendRecord:
    """Export and verify a registered version (`refit models export`); its record.

    A version that has a record keeps it unless `force`. Raises BackendExportError
    when its folder cannot be written."""
    record, _ = read_record(folder)
    if record is not None and not force:
        return record
    if not writable(folder):
        raise BackendExportError(
            f"model version {tag} cannot be exported here: its folder is read-only; run "
            "`refit models export` where the model store is writable"
        )
    # Here, not at the top: the exporter brings ONNX, scikit-learn and the torch backend
    # (seconds of imports) into every server worker, which rarely has anything to export.
    from refit.training.backend_export import export_and_verify

    with FileLock(_lock_path(folder), timeout=_LOCK_TIMEOUT_S):
        record, _ = read_record(folder)
        if record is None or force:
            record = export_and_verify(folder, max_length=max_length)
    return record


def ensure_exported(
    folder: Path, tag: str, options: BackendOptions, *, enabled: bool = True
) -> None:
    """At a version's first load: export and verify it if it has no record yet, export is
    `enabled` (REFIT_EXPORT_BACKENDS) and a backend other than torch may serve it on this
    CPU (REFIT_BACKEND auto, onnx or onnx-int8); log one line saying what happened. Never
    raises: torch serves a version that cannot be exported, and the version's own load
    says whether it is broken."""
    if not enabled or options.backend not in EXPORTED_AT_LOAD:
        return
    if resolved_device(options.device) != "cpu":
        return
    if read_record(folder)[0] is not None:
        return
    if not writable(folder):
        logger.warning(
            "model version %s has no ONNX export and its folder is read-only: torch serves "
            "it; `refit models export` where the store is writable makes one",
            tag,
        )
        return
    started = time.perf_counter()
    try:
        record = export_version(folder, tag, max_length=options.max_length)
    except Exception as exc:
        from refit.training.backend_export import short_error

        logger.warning(
            "model version %s could not be exported (%s): torch serves it", tag, short_error(exc)
        )
        return
    logger.info(
        "model version %s had no ONNX export: exported and verified in %.0f s; auto on a CPU "
        "serves %s",
        *(tag, time.perf_counter() - started, record.auto_cpu),
    )


def writable(folder: Path) -> bool:
    """Whether this process may add files to `folder` (a read-only store or mount: no)."""
    return os.access(folder, os.W_OK)


def _lock_path(folder: Path) -> Path:
    """One lock per version, beside its folder rather than in it: the version's folder
    stays as BentoML made it, and BentoML lists only folders, so it never sees the file.
    In the store rather than the temporary folder, every worker of every process that
    shares the store finds it, and it goes when the model's folder goes."""
    return folder.parent / f".{folder.name}.export.lock"
