"""Switching the served model without a restart.

A new champion is loaded beside the serving one, checked and warmed up off the
request path, then put in place with one reference swap; batches already running
finish on the model they started with, and the old weights are released once the
swap is done. A version that fails any step is refused: the serving model stays,
and the refusal is logged and counted.

Each worker watches the champion pointer itself (a stat call every few seconds),
so a promotion reaches every worker of every replica that shares the state
folder; the admin endpoint only makes the worker it reaches look at once.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

import torch

from core.errors import ModelLoadError, ModelNotFoundError
from core.registry import Registry
from monitoring.prometheus_metrics import MODEL_LOAD_SECONDS, MODEL_SWAPS
from service.classify import ClassifyHandler
from service.predictor import ServedModel
from service.settings import Settings

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
        self._refused: set[str] = set()  # tags already refused: not retried every poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Watch the champion pointer in a daemon thread."""
        if self.settings.serving.reload_interval_s <= 0:
            return
        self._thread = threading.Thread(target=self._watch, name="refit-hot-swap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.serving.reload_interval_s):
            try:
                tag = self.registry.champion_tag()
                changed = tag is not None and tag != self.handler.served.version.tag
                if changed and tag not in self._refused:
                    self.swap_to_champion()
            except Exception:  # the watcher must outlive any one failure
                logger.exception("champion check failed; serving %s", self._serving())

    def _serving(self) -> str:
        return self.handler.served.version.version

    def swap_to_champion(self, *, retry_refused: bool = False) -> SwapOutcome:
        """Serve the registry's champion, if it is not served already and loads cleanly.

        A version refused before is tried again only when `retry_refused` is set (an
        operator asked explicitly); the watcher does not retry it every few seconds.
        """
        with self._lock:
            try:
                target = self.registry.get()
            except ModelNotFoundError as exc:
                return self._refuse("champion", str(exc))
            if target.tag in self._refused and not retry_refused:
                return SwapOutcome("refused", self._serving(), "refused before")
            if target.tag == self.handler.served.version.tag:
                return SwapOutcome("unchanged", self._serving())
            started = time.perf_counter()
            try:
                served = ServedModel.load(target, self.settings)
            except (ModelLoadError, OSError, ValueError, RuntimeError) as exc:
                return self._refuse(target.tag, str(exc))
            MODEL_LOAD_SECONDS.observe(time.perf_counter() - started)
            previous = self.handler.activate(served)
            was, device = previous.version.tag, previous.classifier.device
            del previous  # the last reference here: the collection below can free it
            _free_memory(device)
            MODEL_SWAPS.labels("swapped").inc()
            logger.info("now serving %s (was %s)", target.tag, was)
            return SwapOutcome("swapped", self._serving())

    def _refuse(self, tag: str, reason: str) -> SwapOutcome:
        self._refused.add(tag)
        MODEL_SWAPS.labels("refused").inc()
        logger.error("refused to serve %s: %s; still serving %s", tag, reason, self._serving())
        return SwapOutcome("refused", self._serving(), reason)


def _free_memory(device: torch.device) -> None:
    # Batches that began before the swap hold their own reference to the old model;
    # its memory is freed when the last of them ends, or here if none is running.
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
