"""The service's API methods are resolved once per instance, not once per request."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import bentoml
import pytest

from refit.core.compat.bentoml import bind_api_methods


@bentoml.service(name="bind-check")
class Echo:
    @bentoml.api
    def echo(self, text: str) -> str:
        return text.upper()

    @bentoml.api
    async def echo_async(self, text: str) -> str:
        return text.lower()


# The decorator made `Echo` a bentoml Service; its type hints still say the class.
SERVICE: Any = Echo


def _count_signatures(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = inspect.signature

    def counted(*args: Any, **kwargs: Any) -> inspect.Signature:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counted)
    return calls


def test_bentoml_resolves_a_method_anew_on_each_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the binding avoids; if BentoML stops doing it, the binding can go.
    instance = SERVICE.inner()
    calls = _count_signatures(monkeypatch)
    assert instance.echo is not instance.echo
    assert calls[0] >= 2


def test_bound_methods_are_looked_up_without_rebuilding(monkeypatch: pytest.MonkeyPatch) -> None:
    instance = SERVICE.inner()
    assert sorted(bind_api_methods(instance, SERVICE.apis)) == ["echo", "echo_async"]
    calls = _count_signatures(monkeypatch)
    first = instance.echo
    assert instance.echo is first
    assert first.local is instance.echo.local
    assert calls[0] == 0
    # What BentoML's HTTP handler calls: the same results as the method itself.
    assert instance.echo.local("abc") == "ABC"
    assert asyncio.run(instance.echo_async.local("ABC")) == "abc"


def test_a_data_descriptor_is_left_alone() -> None:
    class Managed:
        def __get__(self, instance: object, owner: type) -> str:
            return "managed"

        def __set__(self, instance: object, value: object) -> None:
            raise AssertionError("must not be set")

    class Holder:
        value = Managed()

    assert bind_api_methods(Holder(), {"value": Holder.__dict__["value"]}) == []
