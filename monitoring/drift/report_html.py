"""Evidently's report page, rendered so that no logged text can run as script.

Evidently 0.7.23 writes the report's data into an inline `<script>` with plain
`json.dumps`, so a logged text holding `</script><script>…` closed the data block and
ran in the reader's browser. Here the same page is built from the same pieces, except
that the data is serialised for the place it lands: `<`, `>` and `&` (which JSON can
only hold inside strings) become `\\u003c`, `\\u003e` and `\\u0026`, and U+2028/U+2029
are escaped too. The page then carries a Content-Security-Policy that lets exactly its
own inline scripts run, by hash, so a text that did get through still could not.

The pieces of Evidently this reads (its template, the widget list of a snapshot) are
named in `core.compat.evidently`, with the version they were written for.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Final

_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.S)
_JSON_ESCAPES: Final = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
CSP_META: Final = re.compile(
    r'<meta http-equiv="Content-Security-Policy" content="([^"<>]*)">', re.I
)
# Evidently's charts style themselves from script (inline style tags) and embed their
# icon font as a data: URL; nothing on the page may reach another host.
_POLICY: Final = (
    "default-src 'none'; {scripts}; style-src 'unsafe-inline'; font-src data:; "
    "img-src data: blob:; base-uri 'none'; form-action 'none'"
)


def script_json(value: Any, encoder: type[json.JSONEncoder] | None = None) -> str:
    """`value` as JSON that is safe inside an HTML `<script>` element."""
    # NaN stays NaN: a JavaScript literal, which Evidently's charts expect.
    text = json.dumps(value, cls=encoder)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def script_policy(page: str) -> str:
    """A policy that allows exactly the inline scripts `page` has, by their SHA-256."""
    hashes = sorted(
        {
            "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
            for body in _SCRIPT.findall(page)
        }
    )
    scripts = "script-src " + (" ".join(hashes) if hashes else "'none'")
    return _POLICY.format(scripts=scripts)


def evidently_page(snapshot: object) -> str:
    """The standalone HTML page of an Evidently snapshot, with its data escaped for a
    script element and a Content-Security-Policy (meta tag, first in the head) that
    lets only the page's own scripts run."""
    # Here, not at the top: every server worker reads `page_policy`, and importing
    # Evidently takes seconds that a worker that never writes a report should not pay.
    from refit.core.compat.evidently import snapshot_page_parts

    parts = snapshot_page_parts(snapshot)
    data = (
        f"<script>var {parts.dashboard_id} = "
        f"{script_json(parts.dashboard, parts.encoder)};\n"
        f"var additional_graphs_{parts.dashboard_id} = "
        f"{script_json(parts.additional_graphs, parts.encoder)};</script>"
    )
    page = parts.page_without_data.replace(parts.data_marker, data, 1)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{script_policy(page)}">'
    return re.sub(r"(<head[^>]*>)", lambda m: m.group(1) + meta, page, count=1)


def page_policy(head: str) -> str | None:
    """The policy a report page declared for itself (its first meta tag); None if none."""
    found = CSP_META.search(head)
    return found.group(1) if found else None
