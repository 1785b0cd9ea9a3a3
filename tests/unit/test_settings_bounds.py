"""Every setting has a safe range: no allowed value lets one client take a worker's memory
or time, and no float setting takes inf or nan (issue 25, cases 10 and 12)."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from annotated_types import Le, Lt
from pydantic.fields import FieldInfo

from refit.core.errors import ConfigError
from refit.service.http.request_budget import MAX_REQUEST_BYTES, MAX_REQUEST_CHARS
from refit.service.settings import SECTIONS, ServingSettings, Settings


def _numeric(info: FieldInfo) -> type | None:
    for kind in (float, int):
        if info.annotation is kind or kind in typing.get_args(info.annotation):
            return kind
    return None


FIELDS = [
    (cls, name, kind)
    for cls in SECTIONS.values()
    for name, info in cls.model_fields.items()
    if (kind := _numeric(info)) is not None
]
FLOATS = [(cls, name) for cls, name, kind in FIELDS if kind is float]


@pytest.mark.parametrize(
    ("section", "field", "kind"), FIELDS, ids=lambda v: getattr(v, "__name__", v)
)
def test_every_numeric_setting_has_an_upper_bound(section: Any, field: str, kind: type) -> None:
    metadata = section.model_fields[field].metadata
    assert any(isinstance(m, Le | Lt) for m in metadata), section.env_var(field)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e400"])
@pytest.mark.parametrize(("section", "field"), FLOATS, ids=lambda v: getattr(v, "__name__", v))
def test_no_float_setting_takes_inf_or_nan(
    monkeypatch: pytest.MonkeyPatch, section: Any, field: str, value: str
) -> None:
    variable = section.env_var(field)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as refused:
        section.load()
    assert variable in str(refused.value)
    assert "finite" in str(refused.value)


def test_an_inf_timeout_given_in_code_is_refused_too() -> None:
    with pytest.raises(ConfigError, match="REFIT_REQUEST_TIMEOUT_S"):
        Settings(request_timeout_s=float("inf"))


def test_a_million_characters_a_text_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFIT_MAX_TEXT_CHARS", "1000000")
    with pytest.raises(ConfigError, match="REFIT_MAX_TEXT_CHARS"):
        Settings()


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"max_texts_per_request": 1024, "max_text_chars": 4000}, "REFIT_MAX_TEXTS_PER_REQUEST"),
        ({"max_in_flight_texts": 65_536, "max_text_chars": 4000}, "REFIT_MAX_IN_FLIGHT_TEXTS"),
        ({"max_texts_per_request": 64, "max_in_flight_texts": 32}, "REFIT_MAX_IN_FLIGHT_TEXTS"),
        ({"max_texts_per_request": 128, "max_text_chars": 100}, "REFIT_MAX_BATCH_SIZE"),
        ({"max_url_bytes": 32768, "max_head_bytes": 16384}, "REFIT_MAX_URL_BYTES"),
        ({"max_latency_ms": 60_000, "request_timeout_s": 30}, "REFIT_MAX_LATENCY_MS"),
    ],
)
def test_limits_that_are_each_allowed_are_refused_together(
    values: dict[str, int], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        ServingSettings.load(**values)


def test_the_largest_request_the_limits_allow_stays_in_the_budget() -> None:
    largest = ServingSettings.load(max_texts_per_request=64, max_text_chars=4096)
    assert largest.max_texts_per_request * largest.max_text_chars <= MAX_REQUEST_CHARS
    assert largest.resolved_max_request_bytes() <= MAX_REQUEST_BYTES
    with pytest.raises(ConfigError, match="REFIT_MAX_REQUEST_BYTES"):
        ServingSettings.load(max_request_bytes=768 * 2**20)


def test_the_defaults_are_within_every_bound() -> None:
    Settings()  # raises if a default broke a rule
