"""Which version a server worker serves when it starts.

The champion, when it loads. When it does not (its files were damaged after it
was promoted, or it fails on this machine's device), the worker serves the version
that served before it: the promotion history is walked newest first, each event's
version and then the one it replaced, and the first that loads and predicts
serves. The worker says so in one ERROR log line, in the body of `GET /readyz`
(still 200: it serves) and on `refit_model_fallback`; its hot-swapper starts with
the champion refused, so it is not retried every few seconds, and follows the
next promotion as usual.

When no version loads, or the prediction log cannot work (`open_log`), the worker
cannot serve at all. BentoML's process manager (circus) would start a worker that
exits again at once, for ever, behind an open port; inside a container it leaves the
port open with no worker. So the worker logs one error and stops the server
(`stop_reason`): `bentoml serve` exits, `refit serve` with a non-zero status and that
error, and a supervisor sees a failed server instead of one that never becomes ready.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NoReturn

from refit.core.errors import ConfigError, ModelLoadError, PredictionLogUnavailable
from refit.core.registry import Registry
from refit.monitoring.prediction_log import PredictionLog
from refit.service.model.predictor import ServedModel, load_failure
from refit.service.model.stop_reason import stop_server_because
from refit.service.settings import Settings

logger = logging.getLogger(__name__)


def load_served_model(registry: Registry, version: str, settings: Settings) -> ServedModel:
    """Version `version` (the champion) loaded, else the newest earlier champion that loads.

    Raises ModelLoadError, after asking BentoML to stop the server, if none loads.
    """
    champion = f"{registry.name}:{version}"
    refused: dict[str, str] = {}
    for tag in [champion, *earlier_champions(registry.history(), champion)]:
        try:
            served = ServedModel.load(registry.get(tag.split(":", 1)[1]), settings)
        except Exception as exc:  # any failure: try the next one
            refused[tag] = load_failure(exc, tag)
            continue
        if refused:
            served.refused = refused
            _report_fallback(champion, served.version.tag, refused)
        return served
    _give_up(registry.name, refused)


def earlier_champions(history: Iterable[dict[str, Any]], champion: str) -> list[str]:
    """Tags of earlier champions, most recent first, `champion` left out.

    Each promotion event names the version promoted (`tag`) and the one it replaced
    (`previous`); newest event first, both in that order, each tag once.
    """
    found: list[str] = []
    for event in reversed(list(history)):
        for tag in (event.get("tag"), event.get("previous")):
            if tag and tag != champion and tag not in found:
                found.append(tag)
    return found


def _report_fallback(champion: str, serving: str, refused: dict[str, str]) -> None:
    others = [tag for tag in refused if tag != champion]
    also = f"; also refused: {', '.join(others)}" if others else ""
    logger.error(
        "the champion does not load (%s); serving %s instead, the most recent earlier "
        "champion that loads%s",
        refused[champion],
        serving,
        also,
    )


def _give_up(name: str, refused: dict[str, str]) -> NoReturn:
    message = f"no version of model {name!r} can be served: {'; '.join(refused.values())}"
    stop_server_because(message)
    raise ModelLoadError(message)


def open_log(settings: Settings) -> PredictionLog:
    """The prediction log, checked and started.

    Raises, after asking BentoML to stop the server, if the log cannot work: a URL that
    cannot (ConfigError), a damaged SQLite file or a database that refuses the table
    (PredictionLogUnavailable). A database that is only down or full is no reason to
    stop: the worker serves and /readyz says the log fails.
    """
    try:
        log = PredictionLog.from_settings(settings)
        log.start()
    except (ConfigError, PredictionLogUnavailable) as exc:
        stop_server_because(str(exc))
        raise
    return log
