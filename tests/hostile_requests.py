"""Hostile requests, each with the statuses that count as handling it well.

Limits are those of the `served_env` fixture (16 texts a request, 2,000 characters a
text) with an empty admin token.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field

JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class HostileRequest:
    name: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    expected: frozenset[int] = frozenset({400})
    method: str = "POST"
    # Sent after `headers`, repeats included: a dict cannot hold a header twice.
    more_headers: tuple[tuple[str, str], ...] = ()

    def send(self, host: str, port: int) -> tuple[int, bytes]:
        """(status, body), over a raw connection: header values go out as latin-1 bytes
        exactly as written, which HTTP client libraries refuse to send."""
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            connection.putrequest(self.method, self.path)
            for name, value in [*self.headers.items(), *self.more_headers]:
                connection.putheader(name, value.encode("latin-1"))
            connection.putheader("Content-Length", str(len(self.body)))
            connection.endheaders(self.body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


def _texts(*texts: str) -> bytes:
    return json.dumps({"texts": list(texts)}).encode()


def _feedback(prediction_id: str, label: str) -> bytes:
    return json.dumps({"items": [{"id": prediction_id, "label": label}]}).encode()


MULTIPART = b"--x\r\n\r\n"


def _unsupported(name: str, path: str, body: bytes, content_type: str | None) -> HostileRequest:
    """A body of a media type the API does not take (none, when `content_type` is None):
    415."""
    headers = {} if content_type is None else {"content-type": content_type}
    return HostileRequest(name, path, body, headers=headers, expected=frozenset({415}))


OK = frozenset({200})
HOSTILE_TEXTS = [
    "\u202eevil right-to-left override",
    "\x00\x01\x02 control characters \x1b[31m",
    "😀" * 500,
    "<script>alert(1)</script>",
    "'; DROP TABLE predictions; --",
    "x" * 2000,
    "\ufeff\u200b\u2028\u2029 invisible",
    "%s%n%x {0} ${jndi:ldap://127.0.0.1/a}",
]

CORPUS = [
    HostileRequest("invalid utf-8", "/classify", b'{"texts": ["\xff\xfe\xfa"]}'),
    HostileRequest("lone surrogate", "/classify", b'{"texts": ["\\ud800"]}', expected=OK | {400}),
    HostileRequest("nested 100k deep", "/classify", b"[" * 100_000 + b"]" * 100_000),
    HostileRequest(
        "100k texts", "/classify", _texts(*["a"] * 100_000), expected=frozenset({400, 413})
    ),
    HostileRequest("text too long", "/classify", _texts("x" * 2001)),
    HostileRequest("json scalar", "/classify", b"42"),
    HostileRequest("json null texts", "/classify", b'{"texts": null}'),
    HostileRequest("duplicate keys", "/classify", b'{"texts": ["a"], "texts": 7}'),
    _unsupported("text/plain body", "/classify", _texts("a"), "text/plain"),
    _unsupported("multipart without boundary", "/classify", MULTIPART, "multipart/form-data"),
    _unsupported("multipart on feedback", "/feedback", MULTIPART, "multipart/form-data; boundary"),
    _unsupported("no content type", "/classify", _texts("a"), None),
    *[
        HostileRequest(
            f"two content types on {path}, {order}",
            path,
            body,
            headers={"content-type": first},
            more_headers=(("Content-Type", second),),
            expected=frozenset({400, 415}),
        )
        for path, body in (("/classify", _texts("a")), ("/feedback", _feedback("abc", "billing")))
        for order, (first, second) in {
            "multipart first": ("multipart/form-data; boundary=x", "application/json"),
            "json first": ("application/json", "multipart/form-data; boundary=x"),
            "json twice": ("application/json", "application/json"),
        }.items()
    ],
    *[
        HostileRequest(f"hostile text {i}", "/classify", _texts(text), expected=OK)
        for i, text in enumerate(HOSTILE_TEXTS)
    ],
    HostileRequest("blank label", "/feedback", _feedback("abc", "   ")),
    HostileRequest("html label", "/feedback", _feedback("abc", "<b>billing</b>")),
    HostileRequest("nul label", "/feedback", _feedback("abc", "bill\x00ing")),
    HostileRequest("huge label", "/feedback", _feedback("abc", "b" * 10_000)),
    HostileRequest("path-like id", "/feedback", _feedback("../../etc/passwd", "billing")),
    HostileRequest("unknown id", "/feedback", _feedback("0" * 32, "billing"), expected=OK),
    HostileRequest("no items", "/feedback", b'{"items": []}'),
    HostileRequest(
        "admin without token", "/admin/reload", b"", headers={}, expected=frozenset({403})
    ),
    *[
        HostileRequest(
            f"admin with blank bearer {i}",
            "/admin/reload",
            b"",
            headers={"authorization": f"Bearer {blank}"},
            expected=frozenset({403}),
        )
        for i, blank in enumerate(["", " ", "\xa0", "\x85"])
    ],
    HostileRequest("unknown path", "/wp-login.php", expected=frozenset({404}), method="GET"),
    HostileRequest("get on classify", "/classify", expected=frozenset({405}), method="GET"),
]
