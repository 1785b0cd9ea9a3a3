"""JSON APIs get their media type declared once, not derived from a schema per response."""

from __future__ import annotations

from typing import Any, ClassVar

from refit.core.compat.bentoml import declare_json_responses


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
    # Fresh classes per run: the counters and declared types are class state.
    class JsonSpec(Spec):
        pass

    class TextSpec(Spec):
        found = "text/plain"

    class StreamSpec(Spec):
        media_type = "text/event-stream"

    apis: dict[str, Any] = {"a": Api(JsonSpec), "b": Api(TextSpec), "c": Api(StreamSpec)}
    assert declare_json_responses(apis) == ["a"]
    assert JsonSpec.media_type == "application/json"
    assert TextSpec.media_type is None
    assert StreamSpec.media_type == "text/event-stream"
    assert StreamSpec.derived == 0  # already declared: nothing derived
