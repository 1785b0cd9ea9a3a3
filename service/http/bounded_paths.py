"""Keep BentoML's request metrics from growing with every path a client makes up.

BentoML's traffic middleware, the outermost of the app, labels its request
metrics with the raw request path; 20,000 GETs to distinct unknown paths made
/metrics 83 MB and its scrape 34-46 s. No middleware of refit's runs before it,
so refit hands BentoML a subclass of that middleware: it labels a request with
its route, `/{unknown}` for any path no route serves and a template such as
`/reports/{name}` for routes with a variable part, and passes the real path on
in the scope; `RestorePath`, refit's first middleware, puts it back before
routing. Nothing else about the request changes.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from refit.core.compat.bentoml import TrafficMetricsMiddleware, use_traffic_metrics

# Routes with a fixed path: BentoML's own, and refit's.
FIXED_ROUTES = frozenset(
    {
        "/",
        "/docs",
        "/docs.json",
        "/schema.json",
        "/status.json",
        "/metrics",
        "/livez",
        "/healthz",
        "/readyz",
        "/classify",
        "/feedback",
        "/admin/reload",
    }
)
# Routes with a variable tail, and the label their requests are counted under.
PREFIX_ROUTES = {
    "/static_content/": "/static_content/{file}",
    "/reports/": "/reports/{name}",
    "/models/": "/models/{version}",
}
UNKNOWN = "/{unknown}"
REAL_PATH = "refit.path"


def route_label(path: str) -> str:
    """The bounded label for `path`: the path itself, a route template, or UNKNOWN."""
    if path in FIXED_ROUTES:
        return path
    for prefix, label in PREFIX_ROUTES.items():
        if path.startswith(prefix):
            return label
    return UNKNOWN


class BoundedTrafficMetrics(TrafficMetricsMiddleware):
    """BentoML's traffic metrics, labelled by route instead of by raw path."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] == "http":
            path = scope.get("path", "")
            label = route_label(path)
            if label != path:
                scope = {**scope, "path": label, REAL_PATH: path}
        await super().__call__(scope, receive, send)


class RestorePath:
    """Put back the path `BoundedTrafficMetrics` replaced by its label, for routing; answer
    a path no route serves at once, with a JSON 404 like every other refit error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_label(scope.get(REAL_PATH, scope["path"])) == UNKNOWN:
            message = "no such path; the API is POST /classify, POST /feedback, POST /admin/reload"
            await JSONResponse({"error": message}, status_code=404)(scope, receive, send)
            return
        if REAL_PATH in scope:
            scope = {**scope, "path": scope[REAL_PATH]}
        await self.app(scope, receive, send)


def install_bounded_metrics() -> None:
    """Make BentoML build its app with `BoundedTrafficMetrics` (it imports the class by
    name from this module when it assembles its middlewares, in every worker)."""
    use_traffic_metrics(BoundedTrafficMetrics)
