"""The service in-process, through its ASGI app (no network, no subprocess)."""

from __future__ import annotations

import gc
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from cases import BAD_REQUESTS
from paths import ROOT
from starlette.applications import Starlette
from starlette.testclient import TestClient

from refit.service.settings import reset_settings


@pytest.fixture(scope="module")
def client(served_env: dict[str, str]) -> Iterator[TestClient]:
    saved = {k: os.environ.get(k) for k in served_env}
    os.environ.update(served_env)  # the service module reads settings when imported
    reset_settings()
    module = importlib.import_module("refit.service.service")
    with TestClient(module.Classifier.to_asgi()) as test_client:
        yield test_client
    gc.unfreeze()  # the service froze this test process's heap, as it does a worker's
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# What a serving process never needs: drift reports (Evidently), the ONNX exporter and
# its checks (onnx, scikit-learn). Imported at start, they cost every BentoML process
# seconds: `python -X importtime -c "import refit.service.service"` took 11.7 s with
# them and 4.4 s without, on 2 cores.
NOT_FOR_SERVING = ("evidently", "onnx", "sklearn")


def test_the_service_module_loads_no_report_or_export_library(
    served_env: dict[str, str],
) -> None:
    probe = (
        "import sys, refit.service.service; "
        f"print(sorted(m for m in {NOT_FOR_SERVING!r} if m in sys.modules))"
    )
    env = {**os.environ, **served_env, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split()[-1] == "[]"


def classify(client: TestClient, texts: list[str]) -> list[dict]:
    response = client.post("/classify", json={"texts": texts})
    assert response.status_code == 200, response.text
    return response.json()


TEXTS = [
    "I was charged twice for my subscription this month, please refund one payment",
    "where is my package",
    "cant log in",
    "Hello, I ordered a pair of headphones three weeks ago and the tracking number still "
    "shows nothing. Could you tell me what is going on? Thanks, Maria",
]


def test_each_text_gets_one_complete_prediction(client: TestClient, served_env) -> None:
    results = classify(client, TEXTS)
    assert len(results) == len(TEXTS)
    from refit.core.registry import Registry
    from refit.service.settings import get_settings

    champion = Registry.from_settings(get_settings().core).get()
    for item in results:
        assert set(item) == {"id", "label", "score", "scores", "model_version"}
        assert item["label"] in champion.labels
        assert set(item["scores"]) == set(champion.labels)
        assert item["score"] == pytest.approx(item["scores"][item["label"]])
        assert item["score"] == pytest.approx(max(item["scores"].values()))
        assert sum(item["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert item["model_version"] == champion.version
    assert len({item["id"] for item in results}) == len(TEXTS)


def test_json_responses_declare_their_type_without_a_schema_per_response(
    client: TestClient,
) -> None:
    service = importlib.import_module("refit.service.service").Classifier
    for name in ("classify", "feedback", "reload"):
        assert service.apis[name].output_spec.media_type == "application/json"
    response = client.post("/classify", json={"texts": ["where is my package"]})
    assert response.headers["content-type"] == "application/json"


def test_the_front_door_asks_this_workers_scheduler(client: TestClient) -> None:
    import bentoml

    module = importlib.import_module("refit.service.service")
    scheduler = module.PARTS.scheduler()
    assert scheduler is not None
    assert scheduler is bentoml.get_current_service().handler.scheduler
    assert module.PARTS.served_version() is bentoml.get_current_service().handler.served.version


def test_the_worker_answers_timeouts_itself_and_froze_its_heap(client: TestClient) -> None:
    from refit.core.compat.bentoml import TimeoutMiddleware
    from refit.service.http.response_deadline import ResponseDeadline

    app = client.app
    assert isinstance(app, Starlette)
    classes = [m.cls for m in app.user_middleware if isinstance(m.cls, type)]
    deadlines = [cls for cls in classes if issubclass(cls, TimeoutMiddleware)]
    assert deadlines == [ResponseDeadline]  # BentoML's, which leaks a timer a request, is gone
    # REFIT_TRACING is off by default: no span is opened per request.
    assert "OpenTelemetryMiddleware" not in {cls.__name__ for cls in classes}
    assert gc.get_freeze_count() > 0


def test_batched_request_matches_one_text_requests(client: TestClient) -> None:
    batched = classify(client, TEXTS)
    for text, expected in zip(TEXTS, batched, strict=True):
        (single,) = classify(client, [text])
        assert single["label"] == expected["label"]
        labels = sorted(expected["scores"])
        np.testing.assert_allclose(
            [single["scores"][k] for k in labels],
            [expected["scores"][k] for k in labels],
            atol=1e-4,
        )


@pytest.mark.parametrize(("name", "body", "words"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests_get_a_400_naming_the_problem(
    client: TestClient, name: str, body: bytes, words: tuple[str, ...]
) -> None:
    response = client.post("/classify", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, (name, response.status_code, response.text)
    message = response.json()["error"].lower()
    for word in words:
        assert word.lower() in message, (name, message)


def test_openapi_documents_the_endpoint_and_its_limits(client: TestClient) -> None:
    spec = client.get("/docs.json").json()
    assert "/classify" in spec["paths"]
    text = str(spec)
    assert "'maxItems': 16" in text
    assert "'maxLength': 2000" in text


def test_ready_once_the_model_is_loaded(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200


def test_readyz_the_front_page_and_the_log_say_which_backend_answered(
    client: TestClient, served_env: dict[str, str]
) -> None:
    from refit.core.backends.record import read_record
    from refit.core.registry import Registry
    from refit.service.settings import get_settings

    version = Registry.from_settings(get_settings().core).get()
    record, why = read_record(version.path)
    assert record is not None, why  # registration exported the champion
    expected = "torch-traced" if record.auto_cpu == "torch" else record.auto_cpu
    ready = client.get("/readyz").json()
    assert ready["backend"] == expected
    assert ready["backend_reason"] == record.auto_reason
    assert client.get("/status.json").json()["served"]["backend"] == expected
    assert f"<th>backend</th><td class=num>{expected}</td>" in client.get("/").text
    ids = [r["id"] for r in classify(client, TEXTS[:2])]
    assert _log_rows(served_env, ids)["backend"].tolist() == [expected, expected]


def _log_rows(served_env: dict[str, str], ids: list[str]):
    from refit.monitoring.prediction_log import PredictionLog

    url = f"sqlite:///{served_env['REFIT_STATE_DIR']}/predictions.sqlite3"
    log = PredictionLog(url)
    try:
        frame = log.read(0, 4e9)
    finally:
        log.close()
    return frame[frame["id"].isin(ids)]


def test_every_answered_prediction_is_already_in_the_log(
    client: TestClient, served_env: dict[str, str]
) -> None:
    results = classify(client, TEXTS)
    rows = _log_rows(served_env, [r["id"] for r in results]).set_index("id")
    assert len(rows) == len(TEXTS)
    for item, text in zip(results, TEXTS, strict=True):
        row = rows.loc[item["id"]]
        assert row["label"] == item["label"]
        assert row["text"] == text
        assert row["model_version"] == item["model_version"]
        assert row["score"] == pytest.approx(item["score"], abs=1e-5)
        assert row["latency_ms"] > 0
        # What drift checks compare, recorded from the serving forward pass.
        assert row["n_chars"] == len(text)
        assert row["n_unknown"] >= 0
        assert len(row["embedding"]) == 64


def test_feedback_reports_an_outcome_per_item(
    client: TestClient, served_env: dict[str, str]
) -> None:
    first, second, third = classify(client, TEXTS[:3])
    items = [
        {"id": first["id"], "label": "billing"},
        {"id": second["id"], "label": "shipping"},
        {"id": "0" * 32, "label": "billing"},
        {"id": third["id"], "label": "data_privacy"},
    ]
    response = client.post("/feedback", json={"items": items})
    assert response.status_code == 200, response.text
    assert [r["outcome"] for r in response.json()] == [
        "stored",
        "stored",
        "unknown_id",
        "new_label",
    ]
    again = client.post("/feedback", json={"items": items[:2]}).json()
    assert [r["outcome"] for r in again] == ["unchanged", "unchanged"]
    changed = client.post("/feedback", json={"items": [{"id": first["id"], "label": "returns"}]})
    assert changed.json() == [{"id": first["id"], "outcome": "updated"}]
    rows = _log_rows(served_env, [first["id"], third["id"]]).set_index("id")
    assert rows.loc[first["id"], "true_label"] == "returns"
    assert rows.loc[third["id"], "true_label"] == "data_privacy"


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"items": []}, "at least 1"),
        ({"items": [{"id": "x"}]}, "label"),
        ({"items": [{"id": "", "label": "a"}]}, "id"),
        ({"items": [{"id": "x", "label": "a"}] * 1001}, "1000"),
    ],
)
def test_bad_feedback_gets_a_400_naming_the_field(
    client: TestClient, body: dict, word: str
) -> None:
    response = client.post("/feedback", json=body)
    assert response.status_code == 400
    assert word in response.json()["error"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Basic abc"}, 401),
        ({"authorization": "Bearer wrong"}, 403),
        ({"authorization": "Bearer test-admin-token"}, 200),
    ],
)
def test_admin_reload_needs_the_token(client: TestClient, headers: dict, status: int) -> None:
    response = client.post("/admin/reload", json={}, headers=headers)
    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["outcome"] == "unchanged"
    else:
        assert "token" in response.json()["error"]
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


def test_metrics_carry_the_latest_drift_check(
    client: TestClient, served_env: dict[str, str]
) -> None:
    import json
    from pathlib import Path

    from refit.monitoring.drift.history import LATEST, reports_dir

    # BentoML's /metrics needs `bentoml serve` (test_deploy scrapes a real server);
    # in-process, the hook it calls is called directly. It uses no instance state.
    service = importlib.import_module("refit.service.service").Classifier.inner
    folder = reports_dir(Path(served_env["REFIT_STATE_DIR"]))
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "status": "drift",
        "model_version": "v1",
        "checked_at": "2026-01-01T10:00:00+00:00",
        "window_size": 700,
        "estimated_accuracy": 0.8,
        "signals": [{"name": "text", "score": 0.7, "score_threshold": 0.6}],
    }
    assert service.__metrics__(None, "bentoml_body 1\n") == "bentoml_body 1\n"  # no check yet
    (folder / LATEST).write_text(json.dumps(summary))
    try:
        body = service.__metrics__(None, "bentoml_body 1\n")
    finally:
        (folder / LATEST).unlink()
    assert body.startswith("bentoml_body 1\n")
    assert 'refit_drift_detected{model_version="v1"} 1.0' in body
    assert 'refit_drift_score{model_version="v1",signal="text"} 0.7' in body
    assert body.count("# TYPE refit_drift_window_size gauge") == 1
