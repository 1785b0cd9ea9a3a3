"""Switching the served model without a restart.

A new champion is loaded beside the serving one, checked and warmed up off the
request path, then put in place with one reference swap; batches already running
finish on the model they started with, and the old weights are released once the
swap is done. A version that fails any step, whatever the exception, is refused:
the serving model stays, the refusal is logged in one line and counted, the
worker reports itself as serving a fallback (`readiness`, `refit_model_fallback`),
and the watcher does not try that version again; `/admin/reload` may.

Each worker watches the champion pointer itself (a stat call every few seconds),
so a promotion reaches every worker of every replica that shares the state
folder; the admin endpoint only makes the worker it reaches look at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from refit.core.errors import ModelNotFoundError
from refit.core.registry import Registry
from refit.monitoring.prometheus_metrics import MODEL_FALLBACK, MODEL_LOAD_SECONDS, MODEL_SWAPS
from refit.service.model.frozen_heap import freeze_heap
from refit.service.model.predictor import ServedModel, load_failure
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwapOutcome:
    outcome: str  # "swapped", "unchanged" or "refused"
    serving: str  # the version serving after the attempt
    reason: str = ""


class HotSwapper:
    def __init__(self, handler: ClassifyHandler, settings: Settings) -> None:
        self.handler = handler
        self.settings = settings
        self.registry = Registry.from_settings(settings.core)
        self._lock = threading.Lock()  # one swap at a time per worker
        # Tags refused, with why: not retried every poll. A worker that started on a
        # fallback begins with the versions it could not load.
        self._refused: dict[str, str] = dict(handler.served.refused)
        self._fallback: tuple[str, str] | None = None  # (champion, serving) on the gauge
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        champion = self.registry.champion_tag()
        if champion is not None and champion in self._refused:
            self._show_fallback(champion)

    def start(self) -> None:
        """Watch the champion pointer in a daemon thread."""
        if self.settings.serving.reload_interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._watch, name="refit-hot-swap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> dict[str, Any]:
        """What this worker serves, on which backend, and whether it is a fallback for a
        champion that fails."""
        served = self.handler.served
        serving = served.version.tag
        champion = self.registry.champion_tag() or serving
        reason = self._refused.get(champion, "") if champion != serving else ""
        return {
            "serving": serving,
            "champion": champion,
            "fallback": bool(reason),
            "reason": reason,
            "backend": served.classifier.name,
            "backend_reason": served.classifier.reason,
            "device": served.classifier.device,
        }

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.serving.reload_interval_s):
            try:
                self._check_champion()
            except Exception:  # the watcher must outlive any one failure
                logger.exception("champion check failed; serving %s", self._serving())

    def _check_champion(self) -> None:
        tag = self.registry.champion_tag()
        if tag is None or tag in self._refused:
            return  # a refused version is tried again only when asked (/admin/reload)
        if tag != self.handler.served.version.tag or self._fallback is not None:
            self.swap_to_champion()

    def _serving(self) -> str:
        return self.handler.served.version.version

    def swap_to_champion(self, *, retry_refused: bool = False) -> SwapOutcome:
        """Serve the registry's champion, if it is not served already and loads cleanly.

        A version refused before is tried again only when `retry_refused` is set (an
        operator asked explicitly); the watcher does not retry it every few seconds.
        """
        with self._lock:
            tag = self.registry.champion_tag()
            if tag in self._refused and not retry_refused:
                return SwapOutcome("refused", self._serving(), "refused before")
            try:
                target = self.registry.get()
            except ModelNotFoundError as exc:
                return self._refuse(tag or "champion", str(exc))
            if target.tag == self.handler.served.version.tag:
                self._clear_fallback()  # the champion is what serves (a rollback, say)
                return SwapOutcome("unchanged", self._serving())
            started = time.perf_counter()
            try:
                served = ServedModel.load(target, self.settings)
            except Exception as exc:  # whatever the load raised, the version is refused
                return self._refuse(target.tag, load_failure(exc, target.tag))
            MODEL_LOAD_SECONDS.observe(time.perf_counter() - started)
            self._activate(served)
            return SwapOutcome("swapped", self._serving())

    def _activate(self, served: ServedModel) -> None:
        previous = self.handler.activate(served)
        self._refused.pop(served.version.tag, None)
        self._clear_fallback()
        was, release = previous.version.tag, previous.classifier.memory_releaser()
        del previous  # the last reference here: the collection below can free it
        _free_memory(release)
        MODEL_SWAPS.labels("swapped").inc()
        logger.info("now serving %s (was %s)", served.version.tag, was)

    def _refuse(self, tag: str, reason: str) -> SwapOutcome:
        """Count and log (one line, no traceback) a version that cannot serve."""
        self._refused[tag] = reason
        MODEL_SWAPS.labels("refused").inc()
        logger.error("hot-swap refused: %s; still serving %s", reason, self._serving())
        if tag == self.registry.champion_tag():
            self._show_fallback(tag)
        return SwapOutcome("refused", self._serving(), reason)

    def _show_fallback(self, champion: str) -> None:
        self._clear_fallback()
        self._fallback = (champion.split(":", 1)[-1], self._serving())
        MODEL_FALLBACK.labels(*self._fallback).set(1)

    def _clear_fallback(self) -> None:
        if self._fallback is not None:
            MODEL_FALLBACK.labels(*self._fallback).set(0)
            self._fallback = None


def _free_memory(release: Callable[[], None]) -> None:
    # Batches that began before the swap hold their own reference to the old model;
    # its memory is freed when the last of them ends, or here if none is running. The
    # new model joins the objects full collections skip (`service.model.frozen_heap`).
    freeze_heap()
    release()
