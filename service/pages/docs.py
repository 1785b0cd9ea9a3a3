"""The OpenAPI UI at /docs, without BentoML's tracker and external images.

BentoML's own index page embeds Google Tag Manager, links a GitHub corner and lets
Swagger UI fetch a validator badge from swagger.io. This page loads the same
Swagger UI files BentoML serves itself under `/static_content/`, and a fixed
inline initializer that reads `/docs.json`, names it after refit and the served
version (BentoML's spec says "None") and turns the validator off. Its
Content-Security-Policy lets the browser run that one inline script (by its hash)
and reach this server only, so nothing on the page can call another host.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Final

ASSETS: Final = "/static_content"

# Replaces BentoML's generic README (its badges are images from other hosts).
DESCRIPTION: Final = (
    "refit's text classifier. `POST /classify` labels texts, `POST /feedback` attaches "
    "their true labels later, `POST /admin/reload` switches to the registry's champion "
    "(bearer token). The [front page](/) shows the served version, the last minute's "
    "traffic, the latest drift check and the retraining decisions."
)
_INIT_BODY: Final = """\
window.addEventListener("load", function () {
  var served = document.body.getAttribute("data-served-version") || "loading";
  fetch("/docs.json").then(function (response) { return response.json(); })
    .then(function (spec) {
      spec.info = spec.info || {};
      spec.info.title = "refit";
      spec.info.version = served;
      spec.info.description = DESCRIPTION;
      delete spec.info.contact;
      window.ui = SwaggerUIBundle({
        spec: spec,
        dom_id: "#swagger-ui",
        deepLinking: true,
        validatorUrl: null,
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
      });
    });
});
"""
INIT_JS: Final = f"var DESCRIPTION = {json.dumps(DESCRIPTION)};\n{_INIT_BODY}"
_INIT_HASH: Final = base64.b64encode(hashlib.sha256(INIT_JS.encode()).digest()).decode()
CSP: Final = (
    f"default-src 'self'; script-src 'self' 'sha256-{_INIT_HASH}'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_STYLE: Final = (
    "body{margin:0;background:#fafafa}"
    ".refit-bar{font:15px system-ui,sans-serif;padding:10px 20px;background:#1d232b;color:#fff}"
    ".refit-bar a{color:#fff}"
)


def docs_page(served_version: str | None) -> str:
    """The /docs document; `served_version` only labels the spec."""
    version = escape(served_version or "loading", quote=True)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>refit API</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">'
        f"<style>{_STYLE}</style></head>"
        f'<body data-served-version="{version}">'
        '<div class="refit-bar"><a href="/">refit front page</a> · '
        '<a href="/docs.json">OpenAPI spec (docs.json)</a></div>'
        '<div id="swagger-ui"></div>'
        f'<script src="{ASSETS}/swagger-ui-bundle.js" charset="UTF-8"></script>'
        f"<script>{INIT_JS}</script>"
        "</body></html>"
    )
