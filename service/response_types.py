"""Declare the media type of JSON responses once, at import.

For an API that returns a list or another root model, BentoML (1.4) works the
response's media type out from the output model's JSON schema, and pydantic builds
that schema anew for every response. Under load with a tiny model that was about a
third of a worker's event-loop time (py-spy at 64 connections: 17% of all samples,
the event loop holding 48%). Setting the output spec's `media_type`, which BentoML
itself does for streams, skips it; the value is what BentoML would have found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JSON = "application/json"


def declare_json_responses(apis: Mapping[str, Any]) -> list[str]:
    """Set `media_type` on each API's output spec whose responses are JSON; their names."""
    declared = []
    for name, api in apis.items():
        spec = api.output_spec
        if spec.media_type is None and spec.mime_type() == JSON:
            spec.media_type = JSON
            declared.append(name)
    return declared
