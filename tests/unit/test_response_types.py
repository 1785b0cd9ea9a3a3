"""JSON APIs get their media type declared once, not derived from a schema per response."""

from __future__ import annotations

from typing import Any, ClassVar

from service.response_types import declare_json_responses


class Spec:
    """Stands in for a BentoML output spec: counts how often the type is derived."""

    derived: ClassVar[int] = 0
    media_type: ClassVar[str | None] = None
    found: ClassVar[str] = "application/json"

    @classmethod
    def mime_type(cls) -> str:
        cls.derived += 1
        return cls.media_type or cls.found


class Api:
    def __init__(self, spec: type[Spec]) -> None:
        self.output_spec = spec


def test_json_outputs_are_declared_and_others_left_alone() -> None:
    json_spec = type("JsonSpec", (Spec,), {})
    text_spec = type("TextSpec", (Spec,), {"found": "text/plain"})
    stream_spec = type("StreamSpec", (Spec,), {"media_type": "text/event-stream"})
    apis: dict[str, Any] = {"a": Api(json_spec), "b": Api(text_spec), "c": Api(stream_spec)}
    assert declare_json_responses(apis) == ["a"]
    assert json_spec.media_type == "application/json"
    assert text_spec.media_type is None
    assert stream_spec.media_type == "text/event-stream"
    assert stream_spec.derived == 0  # already declared: nothing derived
