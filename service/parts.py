"""What a worker's middleware needs from its service instance, handed to it at wiring.

BentoML builds each worker's ASGI app (and its middleware) before the service instance
exists, so middleware cannot be given the instance's parts when it is built. The
service module hands every middleware this worker's `WorkerParts` instead, and the
instance fills it in once it has loaded its model; until then each reader gets None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from refit.core.registry import ModelVersion
    from refit.service.model.hot_swap import HotSwapper
    from refit.service.scheduling.classify import ActiveModel, Answer, ClassifyHandler
    from refit.service.scheduling.scheduler import Scheduler


class WorkerParts:
    def __init__(self) -> None:
        self.handler: ClassifyHandler | None = None
        self.swapper: HotSwapper | None = None

    def attach(self, handler: ClassifyHandler, swapper: HotSwapper) -> None:
        self.handler, self.swapper = handler, swapper

    def scheduler(self) -> Scheduler[ActiveModel, Answer] | None:
        """This worker's scheduler; None before the instance exists or without one."""
        return None if self.handler is None else self.handler.scheduler

    def scheduled_handler(self) -> ClassifyHandler | None:
        """The classify handler when this worker schedules requests itself; else None."""
        return None if self.scheduler() is None else self.handler

    def served_version(self) -> ModelVersion | None:
        """The version this worker serves; None before the instance exists."""
        return None if self.handler is None else self.handler.served.version

    def served_backend(self) -> str | None:
        """The backend answering for this worker (e.g. "onnx-int8"); None before it exists."""
        return None if self.handler is None else self.handler.served.classifier.name

    def readiness(self) -> dict[str, Any] | None:
        """The hot-swapper's account of what serves and the prediction log's health
        (`ClassifyHandler.log_readiness`); None before the instance exists."""
        if self.swapper is None or self.handler is None:
            return None
        try:
            state = {**self.swapper.readiness(), **self.handler.guard.readiness()}
        except Exception as exc:  # an unreadable champion pointer must not fail the probe
            state = {"error": f"cannot tell what serves: {type(exc).__name__}: {exc}"}
        return state | self.handler.log_readiness()
