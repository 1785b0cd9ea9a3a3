"""Request and response shapes of the HTTP API.

Limits come from settings, so the request type is built by a function; pydantic
then enforces them before a request reaches the model, and BentoML turns a violation
into a 400 whose message names the field and the limit (and the OpenAPI schema
documents both).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationError,
    create_model,
)

from refit.monitoring.label_skeleton import normal_label
from refit.service.settings import ServingSettings

MAX_FEEDBACK_ITEMS = 1000


def texts_type(serving: ServingSettings) -> Any:
    """`list[str]` constrained by the request limits in `serving`."""
    text = Annotated[
        str,
        StringConstraints(min_length=1, max_length=serving.max_text_chars),
        Field(description=f"A text of 1 to {serving.max_text_chars} characters."),
    ]
    return Annotated[
        list[text],  # type: ignore[valid-type]
        Field(
            min_length=1,
            max_length=serving.max_texts_per_request,
            description=f"1 to {serving.max_texts_per_request} texts to classify.",
        ),
    ]


def plain_texts_reader(serving: ServingSettings) -> Callable[[bytes], list[str] | None]:
    """For the /classify fast path (`service/http/classify_route.py`): the texts of a body
    that needs no validation message, a JSON object whose only key is a `texts` that
    meets the limits above, else None. Strict: what BentoML would coerce or explain
    goes to BentoML, so that every 4xx keeps its one wording."""
    body = create_model(
        "PlainClassifyBody",
        __config__=ConfigDict(extra="forbid", strict=True),
        texts=(texts_type(serving), ...),
    )

    def texts(raw: bytes) -> list[str] | None:
        try:
            return body.model_validate_json(raw).texts  # type: ignore[attr-defined,no-any-return]
        except ValidationError:
            return None

    return texts


class Prediction(BaseModel):
    # Scores are finite: BentoML validates what an API returns against this model, so a
    # NaN or inf that got past `service/scheduling/score_guard.py` is a 500, never a body
    # that JSON parsers refuse (pydantic would write it as null otherwise).
    id: str = Field(description="Unique id of this prediction; send it to /feedback later.")
    label: str = Field(description="The most probable label.")
    score: FiniteFloat = Field(description="Probability of `label`.")
    scores: dict[str, FiniteFloat] = Field(description="Probability of every label.")
    model_version: str = Field(description="The model version that answered.")


# A label becomes a class of the next model and a series label in Prometheus: words,
# digits and a little punctuation, no markup, no control characters, no blank ends.
MAX_LABEL_CHARS = 100
LABEL_PATTERN = r"^\w(?:[\w .:/&+()'-]{0,98}[\w.:/&+()'-])?$"  # 1 to MAX_LABEL_CHARS
_LABEL = re.compile(LABEL_PATTERN)


def _valid_label(label: str) -> str:
    # NFKC first: a full-width label is checked, and stored, as the ASCII it stands for.
    label = normal_label(label)
    if not _LABEL.fullmatch(label):
        raise ValueError(
            f"a label is 1 to {MAX_LABEL_CHARS} characters: letters, digits, spaces and "
            "_ . : / & + ( ) ' -, starting with a letter, digit or _ and not ending in a space"
        )
    return label


class FeedbackItem(BaseModel):
    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="`id` of a prediction (as /classify returned it).",
    )
    label: Annotated[str, AfterValidator(_valid_label)] = Field(
        max_length=MAX_LABEL_CHARS,
        # Documented for clients and fuzzers; the validator gives the readable message.
        json_schema_extra={"pattern": LABEL_PATTERN},
        description=f"The true label: 1 to {MAX_LABEL_CHARS} characters, letters, digits, "
        "spaces and _ . : / & + ( ) ' -.",
    )


class FeedbackResult(BaseModel):
    id: str
    outcome: str = Field(
        description="stored | updated (label changed) | unchanged (same label again) | "
        "new_label (stored; the serving model does not know this label) | refused (a new "
        "label past REFIT_FEEDBACK_MAX_NEW_LABELS) | unknown_id"
    )


FeedbackItems = Annotated[
    list[FeedbackItem],
    Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS, description="True labels to attach."),
]


class SwapResult(BaseModel):
    outcome: str = Field(description="swapped, or unchanged when the champion already serves.")
    serving: str = Field(description="The version serving now.")
