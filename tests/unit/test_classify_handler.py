"""The /classify handler on refit's scheduler: requests one pass completes are answered
together, with one prediction-log record, and each still gets exactly its own rows."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY
from tiny_versions import register_tiny_versions, running_handler

from refit.core.registry import Registry
from refit.service.scheduling.classify import ClassifyHandler
from refit.service.settings import Settings

LABELS = ["billing", "shipping"]
REQUESTS = [
    ["where is my parcel", "refund the double charge please"],
    ["hi"],
    ["the invoice total is wrong", "tracking says delivered", "it was not"],
]


def _queue_waits() -> float:
    return (
        REGISTRY.get_sample_value("refit_queue_wait_seconds_count", {"endpoint": "/classify"}) or 0
    )


@pytest.fixture
def handler(tmp_path: Path, tiny_base_model: Path):  # type: ignore[no-untyped-def]
    settings = Settings(
        model_name=f"answer-{tmp_path.name[-8:]}",
        state_dir=tmp_path / "state",
        device="cpu",
        monitoring=True,
        export_backends=False,  # torch serves: the handler, not the backends, is under test
    )
    (version,) = register_tiny_versions(
        Registry.from_settings(settings.core), tiny_base_model, LABELS, 1
    )
    with running_handler(version, settings, tmp_path) as handler:
        yield handler


def test_requests_one_pass_completes_share_one_log_record(handler: ClassifyHandler) -> None:
    scheduler, log = handler.scheduler, handler.log
    assert scheduler is not None
    assert log is not None
    # Hold the model thread at the start of its next round, so that the requests
    # below queue up behind a first one and are taken together.
    gate, entered = threading.Event(), threading.Event()
    read_model = scheduler.current_model

    def held_model():  # type: ignore[no-untyped-def]
        # Requests read it too, to tokenise: only the model thread is held.
        if threading.current_thread().name == "refit-scheduler" and not gate.is_set():
            entered.set()
            assert gate.wait(20)
        return read_model()

    scheduler.current_model = held_model  # type: ignore[method-assign]
    first_seq, waits_before = log.submitted_seq, _queue_waits()

    async def scenario() -> list[list[dict]]:
        first = asyncio.create_task(handler.classify(["plug"]))
        assert await asyncio.to_thread(entered.wait, 20)
        rest = [asyncio.create_task(handler.classify(texts)) for texts in REQUESTS]
        await asyncio.sleep(0.2)  # let every request tokenise and queue
        gate.set()
        await first
        return await asyncio.wait_for(asyncio.gather(*rest), 20)

    answers = asyncio.run(scenario())
    # The plug's round, then one pass for all three requests: two records, not four.
    assert log.submitted_seq - first_seq == 2
    assert _queue_waits() - waits_before == 4  # still one queue wait per request
    classifier = handler.served.classifier
    for texts, results in zip(REQUESTS, answers, strict=True):
        expected = classifier.predict(texts)
        assert len(results) == len(texts)
        got = np.array([[r["scores"][label] for label in LABELS] for r in results])
        np.testing.assert_allclose(got, expected.probs, atol=1e-5)
        assert [r["label"] for r in results] == [LABELS[k] for k in expected.label_ids]
    ids = [r["id"] for results in answers for r in results]
    assert len(set(ids)) == len(ids)
    # Every answered prediction is in the log, each under its own id and text.
    rows = log.read(0, time.time() + 60, columns=["id", "text", "latency_ms", "backend"])
    logged = dict(zip(rows["id"], rows["text"], strict=True))
    sent = [text for texts in REQUESTS for text in texts]
    assert [logged[i] for i in ids] == sent
    assert (rows["latency_ms"] > 0).all()
    # Each record names the backend that answered it.
    assert set(rows["backend"]) == {classifier.name} == {"torch-traced"}
