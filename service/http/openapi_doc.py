"""Make the OpenAPI document tell the truth about what the API answers.

BentoML documents 200, 400, 404 and 500 for every API, and types the 400 body's
`detail` as a string where it sends a list of field errors. The statuses refit
answers with (auth, size and type limits, refusals, a refused model, timeouts)
were missing. `OpenAPIStatuses` rewrites BentoML's `/docs.json` response: every
status each route can return, with its body schema and, for refusals, the
`Retry-After` header.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Scope

from refit.service.http.response_rewrite import ResponseRewrite

SPEC_PATH = "/docs.json"
ERROR = "#/components/schemas/RefitError"
INVALID = "#/components/schemas/InvalidRequest"

SCHEMAS: dict[str, Any] = {
    "RefitError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong and how to fix it."},
            "retry_after_s": {
                "type": "integer",
                "description": "Seconds to wait before retrying (refusals only).",
            },
        },
    },
    "InvalidRequest": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string", "description": "Each invalid field and its limit."},
            "detail": {
                "type": "array",
                "description": "One entry per invalid field, as pydantic reports it.",
                "items": {
                    "type": "object",
                    "properties": {
                        "loc": {"type": "array", "items": {}},
                        "msg": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    },
}

RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
# (description, schema, headers) per status.
STATUSES: dict[int, tuple[str, str, dict[str, Any] | None]] = {
    400: (
        "The body is not valid JSON, a field breaks its limit, or the head has two "
        "Content-Type headers.",
        INVALID,
        None,
    ),
    401: ("No bearer token sent.", ERROR, None),
    403: ("Wrong token, or the endpoint is disabled (no token configured).", ERROR, None),
    404: ("No such route.", ERROR, None),
    408: ("The request body did not arrive in time.", ERROR, None),
    409: ("The champion cannot be served; the previous version keeps serving.", ERROR, None),
    413: ("The body is over REFIT_MAX_REQUEST_BYTES.", ERROR, None),
    415: ("The body is not application/json.", ERROR, None),
    422: ("A feedback label looks like an existing label but is not it.", ERROR, None),
    429: ("Over capacity: refused on arrival.", ERROR, RETRY_AFTER),
    500: ("The model failed on this request.", ERROR, None),
    503: ("Dropped after waiting past the latency budget, or log unavailable.", ERROR, RETRY_AFTER),
    504: ("Not answered within REFIT_REQUEST_TIMEOUT_S.", ERROR, None),
}
ROUTE_STATUSES = {
    "/classify": (400, 404, 408, 413, 415, 429, 500, 503, 504),
    "/feedback": (400, 401, 403, 404, 408, 413, 415, 422, 503, 504),
    "/admin/reload": (401, 403, 404, 409, 500, 504),
}


def truthful(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` with refit's error schemas and every route's statuses."""
    spec.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for route, statuses in ROUTE_STATUSES.items():
        operation = spec.get("paths", {}).get(route, {}).get("post")
        if operation is None:
            continue
        if "requestBody" in operation:
            operation["requestBody"]["required"] = True  # no body is a 4xx, as it should be
        responses = operation.setdefault("responses", {})
        for status in statuses:
            description, schema, headers = STATUSES[status]
            response: dict[str, Any] = {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": schema}}},
            }
            if headers:
                response["headers"] = headers
            responses[str(status)] = response
    return spec


class OpenAPIStatuses(ResponseRewrite):
    """ASGI middleware: rewrite BentoML's OpenAPI document on its way out."""

    def applies(self, scope: Scope) -> bool:
        return bool(scope.get("path") == SPEC_PATH)

    def rewrite(self, start: Message, body: bytes) -> tuple[Message, bytes]:
        if start["status"] == 200:
            body = json.dumps(truthful(json.loads(body))).encode()
        return start, body
