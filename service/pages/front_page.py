"""The person on call's front page, and the pages around it, as one ASGI middleware.

    GET /                      the front page (HTML, no script, works offline)
    GET /status.json           the same figures as JSON
    GET /docs                  the OpenAPI UI (Swagger UI from BentoML's own files)
    GET /reports/<file name>   a drift report or summary from the reports folder
    GET /models/<version>/card a registered version's model card, as plain text

A middleware rather than API methods: these are pages, not part of the API, and
BentoML's own "/" (its generic Swagger page, with a tracking script) is behind it.
Everything else passes through untouched. File reads happen in a worker thread,
never on the event loop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from refit.core.registry import ModelVersion
from refit.core.settings import CoreSettings
from refit.monitoring.drift.report_html import page_policy
from refit.service.pages.data import PageData, PageSources
from refit.service.pages.docs import CSP as DOCS_CSP
from refit.service.pages.docs import docs_page
from refit.service.pages.files import model_card, report_file
from refit.service.pages.html import render
from refit.service.pages.live_rates import LiveRates, RateSampler

logger = logging.getLogger(__name__)

PAGE_CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# A report is Evidently's HTML with its own scripts: it runs in an opaque origin, and
# only the scripts its writer listed by hash in its head may run. A report without that
# list (written before refit escaped report data) shows its summary, and no script.
REPORT_SANDBOX: Final = "sandbox allow-scripts; "
REPORT_WITHOUT_POLICY: Final = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
)
_POLICY_HEAD_BYTES: Final = 8192
_NO_STORE: Final = {"cache-control": "no-store", "x-content-type-options": "nosniff"}
_CARD_PATH: Final = re.compile(r"/models/([^/]+)/card")


def _not_found(what: str) -> Response:
    return JSONResponse({"error": f"no such {what}"}, status_code=404, headers=_NO_STORE)


class FrontPage:
    def __init__(
        self,
        app: ASGIApp,
        *,
        core: CoreSettings,
        served: Callable[[], ModelVersion | None],
        backend: Callable[[], str | None] = lambda: None,
        sampler: RateSampler | None = None,
    ) -> None:
        self.app = app
        self.sources = PageSources(core)
        self.served_version = served
        self.served_backend = backend
        self.sampler = sampler if sampler is not None else RateSampler()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            # Sample from the worker's start: a worker whose first request is the page
            # would otherwise have nothing older to compare with and show no traffic.
            if scope["type"] == "lifespan":
                self.sampler.start()
            await self.app(scope, receive, send)
            return
        self.sampler.start()  # once; also where no lifespan event comes (test clients)
        response = None
        if scope.get("method") in ("GET", "HEAD"):
            response = await run_in_threadpool(self.respond, scope.get("path", ""))
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def respond(self, path: str) -> Response | None:
        """The response for `path`, or None when it is not one of these pages."""
        if path == "/":
            page = render(self.gather())
            return HTMLResponse(page, headers={**_NO_STORE, "content-security-policy": PAGE_CSP})
        if path == "/status.json":
            return JSONResponse(self.gather().to_dict(), headers=_NO_STORE)
        if path == "/docs":
            version = self.served()
            page = docs_page(version.version if version else None)
            return HTMLResponse(page, headers={**_NO_STORE, "content-security-policy": DOCS_CSP})
        if path.startswith("/reports/"):
            return self.report(path.removeprefix("/reports/"))
        card = _CARD_PATH.fullmatch(path)
        if card is not None:
            return self.card(card.group(1))
        return None

    def served(self) -> ModelVersion | None:
        """The version this worker serves; None while the service is starting."""
        try:
            return self.served_version()
        except Exception:  # no service instance yet
            return None

    def backend(self) -> str | None:
        """The backend answering for this worker; None while the service is starting."""
        try:
            return self.served_backend()
        except Exception:  # no service instance yet
            return None

    def live(self) -> LiveRates | None:
        try:
            return self.sampler.rates()
        except Exception as exc:  # the page shows what it has
            logger.warning("live rates unavailable: %r", exc)
            return None

    def gather(self) -> PageData:
        return self.sources.gather(self.served, self.live, self.backend)

    def report(self, name: str) -> Response:
        path = report_file(self.sources.reports, name)
        if path is None:
            return _not_found("report")
        if path.suffix == ".json":
            return FileResponse(path, media_type="application/json", headers=_NO_STORE)
        headers = {**_NO_STORE, "content-security-policy": report_policy(path)}
        return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers)

    def card(self, version: str) -> Response:
        path = model_card(self.sources.registry, version)
        if path is None:
            return _not_found("model version")
        return FileResponse(path, media_type="text/plain; charset=utf-8", headers=_NO_STORE)


def report_policy(path: Path) -> str:
    """The Content-Security-Policy a drift report is served under: its own, sandboxed."""
    with path.open("rb") as file:
        head = file.read(_POLICY_HEAD_BYTES).decode("utf-8", "replace")
    policy = page_policy(head)
    return REPORT_SANDBOX + policy if policy else REPORT_WITHOUT_POLICY
