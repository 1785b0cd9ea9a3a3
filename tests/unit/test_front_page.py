"""The front page: rendering from hand-made figures, live rates from hand-made samples,
and the guards on the files it serves."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from refit.core.errors import ModelNotFoundError
from refit.core.registry import ModelVersion
from refit.core.settings import CoreSettings
from refit.service.pages.data import (
    AuditRow,
    DriftView,
    PageData,
    ReportRun,
    ServedInfo,
    SignalRow,
    audit_row,
    drift_view,
    report_runs,
    tail_records,
)
from refit.service.pages.docs import CSP, docs_page
from refit.service.pages.files import model_card, report_file
from refit.service.pages.front_page import FrontPage
from refit.service.pages.html import render
from refit.service.pages.live_rates import (
    LiveRates,
    RateSampler,
    Sample,
    bucket_quantile,
    compute_rates,
    sample_from,
)

HOSTILE = "<script>alert(1)</script>"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
REPORT = "drift-20261130T115500Z-v1"
CARD = "/models/v1/card"


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="refit-front-page-") as name:
        yield Path(name)


def live(requests: int = 120) -> LiveRates:
    return LiveRates(
        window_s=60.0,
        requests=requests,
        requests_per_s=requests / 60,
        predictions_per_s=requests * 3 / 60,
        p50_s=0.012,
        p99_s=0.35,
        error_rate=0.025,
        errors_by_reason={"validation": 3},
        refusal_rate=0.0,
        refusals_by_cause={},
        cost_per_1k_usd=0.000021,
    )


def drift(status: str = "drift", name: str = "embedding") -> DriftView:
    drifted = [SignalRow(name, 0.71, 0.6)] if status == "drift" else []
    return DriftView(
        status, "2026-11-30T11:55:00+00:00", "v1", "1h", 512, 0.81, 0.02, True, None, drifted, 10
    )


def page(**changes: object) -> PageData:
    data = PageData(
        generated_at=NOW,
        served=ServedInfo("v1", "m:v1", 0.912, "2026-11-30T10:00:00+00:00", True, CARD),
        live=live(),
        drift=drift(),
        reports=[ReportRun(REPORT, f"{REPORT}.html", f"{REPORT}.json")],
        retraining=[AuditRow("2026-11-30T11:56:00+00:00", "decision", "retrain", ["drift twice"])],
    )
    return replace(data, **changes)  # type: ignore[arg-type]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- rendering ---------------------------------------------------------------------


def test_the_page_shows_every_section() -> None:
    text = text_of(render(page()))
    for expected in (
        "serving v1 · drift",
        "test macro-F1 0.912",
        "2026-11-30 10:00:00 UTC (2 h ago)",
        "requests/s 2.00",
        "predictions/s 6.00",
        "latency p50 12 ms",
        "latency p99 350 ms",
        "error rate 2.5% (validation: 3)",
        "cost per 1k predictions $0.000021",
        "embedding 0.71 0.6",
        "estimated accuracy 0.810 ± 0.020",
        "actual accuracy no feedback in the window",
        "drift twice",
    ):
        assert expected in text, expected


def test_hostile_texts_are_escaped_everywhere() -> None:
    served = ServedInfo(HOSTILE, f"m:{HOSTILE}", None, HOSTILE, False, None)
    hostile = page(
        served=served,
        live=replace(live(), errors_by_reason={HOSTILE: 1}),
        drift=replace(drift(name=HOSTILE), model_version=HOSTILE, window=HOSTILE),
        reports=[ReportRun(HOSTILE, None, None)],
        retraining=[AuditRow(HOSTILE, HOSTILE, HOSTILE, [HOSTILE])],
    )
    html = render(hostile)
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8


def test_no_traffic_reads_as_such_not_nan() -> None:
    for quiet in (None, replace(live(0), p50_s=None, p99_s=None, error_rate=None)):
        html = render(page(live=quiet))
        assert "No traffic in the last minute." in html
        assert "nan" not in text_of(html).lower()


@pytest.mark.parametrize(
    ("status", "css", "words"),
    [
        ("drift", "drift", "· drift"),
        ("ok", "ok", "· no drift"),
        ("not_enough_data", "nodata", "· not enough data"),
    ],
)
def test_the_header_wears_the_verdict(status: str, css: str, words: str) -> None:
    html = render(page(drift=drift(status)))
    assert f'<header class="{css}">' in html
    assert words in text_of(html)


def test_without_a_drift_check_the_header_says_so() -> None:
    html = render(page(drift=None, reports=[]))
    assert '<header class="">' in html
    assert "no drift check yet" in html
    assert "No drift check yet." in html


def test_the_page_needs_no_other_host_and_no_script() -> None:
    html = render(page())
    assert re.search(r"https?://", html) is None
    assert "<script" not in html
    assert re.search(r"""(?:src|href)=["']?//""", html) is None


def test_docs_load_swagger_ui_from_this_server_with_one_hashed_inline_script() -> None:
    html = docs_page(HOSTILE)
    assert "googletagmanager" not in html
    assert "<noscript" not in html
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static_content/swagger-ui-bundle.js"]
    assert HOSTILE not in html
    (inline,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in CSP
    assert "validatorUrl: null" in inline
    assert re.search(r"https?://", html) is None


# --- figures from files -------------------------------------------------------------


def test_a_drift_summary_becomes_a_verdict_and_junk_becomes_nothing() -> None:
    summary = {
        "status": "drift",
        "checked_at": "2026-11-30T11:55:00+00:00",
        "model_version": "v1",
        "window": "1h",
        "window_size": 512,
        "estimated_accuracy": 0.81,
        "signals": [
            {"name": "embedding", "value": 0.71, "threshold": 0.6, "drifted": True},
            {"name": "n_chars", "value": 0.5, "threshold": 0.001, "drifted": False},
            "junk",
        ],
    }
    view = drift_view(summary)
    assert view is not None
    assert view.drifted == [SignalRow("embedding", 0.71, 0.6)]
    assert view.signals_checked == 2
    assert view.actual_accuracy is None
    assert (view.estimated_margin, view.estimate_reliable) == (None, True)
    unreliable = drift_view(
        {**summary, "estimated_margin": 0.03, "estimate_reliable": False, "calibration_rows": 1200}
    )
    assert unreliable is not None
    assert (unreliable.estimated_margin, unreliable.estimate_reliable) == (0.03, False)
    assert unreliable.calibration_rows == 1200
    text = text_of(render(page(drift=unreliable)))
    assert (
        "estimated accuracy 0.810 ± 0.030 (calibrated on 1,200 labelled predictions) "
        "(unreliable: the inputs drifted"
    ) in text
    assert drift_view(None) is None
    assert drift_view({"status": 3}) is None


def test_audit_records_read_as_the_cli_reads_them(folder: Path) -> None:
    log = folder / "audit.jsonl"
    records = [
        {"time": "t1", "event": "decision", "action": "none", "reasons": ["no drift"]},
        {
            "time": "t2",
            "event": "retrain",
            "reason": "drift",
            "promoted": False,
            "decision": {"reasons": ["gain too small"]},
        },
        {"time": "t3", "event": "retrain_failed", "reason": "drift", "error": "boom"},
    ]
    log.write_text("not json\n" + "".join(json.dumps(r) + "\n" for r in records))
    rows = [audit_row(r) for r in tail_records(log, 2)]
    assert rows == [
        AuditRow("t2", "retrain", "champion kept", ["trigger: drift", "gain too small"]),
        AuditRow("t3", "retrain_failed", "failed", ["trigger: drift", "error: boom"]),
    ]
    assert tail_records(folder / "missing.jsonl", 5) == []


SHADOW = {
    "replayed": True,
    "rows": 600,
    "agreement": 0.9,
    "agreement_by_label": {"billing": {"rows": 400, "agreement": 0.95}, "x": "junk"},
    "changes": [{"champion": "billing", "challenger": "data_privacy", "rows": 40}],
    "examples": [
        {
            "text": "<b>delete my data</b>",
            "champion_label": "billing",
            "champion_score": 0.93,
            "challenger_label": "data_privacy",
            "challenger_score": 0.8,
            "true_label": "data_privacy",
        }
    ],
    "confident_score": 0.9,
    "confidence_basis": "calibrated",
    "confident_rows": 420,
    "confident_changes": 21,
    "mean_confidence": {"champion": 0.91, "challenger": 0.9, "change": -0.01},
    "estimated_accuracy": None,
    "latency_ms_per_1000": {"champion": 2100.0, "challenger": 2150.4},
}


def test_a_retrains_shadow_replay_is_shown(folder: Path) -> None:
    record = {"time": "t", "event": "retrain", "promoted": True, "shadow": SHADOW}
    row = audit_row(record)
    assert row.shadow == [
        "shadow replay of 600 served texts: agreement 0.900 (by champion label: billing 0.950)",
        "confident predictions that would change: 21 of 420 (calibrated confidence >= 0.9)",
        "would relabel: billing -> data_privacy (40)",
        "mean confidence 0.910 -> 0.900; estimated accuracy n/a -> n/a; ms per 1,000 texts "
        "2100 -> 2150",
        'example: "<b>delete my data</b>" billing (0.93) -> data_privacy (0.80), feedback says '
        "data_privacy",
    ]
    html = render(page(retraining=[row]))
    assert "&lt;b&gt;delete my data&lt;/b&gt;" in html
    assert "<b>delete" not in html
    assert "confident predictions that would change: 21 of 420" in text_of(html)
    skipped = audit_row({**record, "shadow": {"replayed": False, "reason": "hashed log"}})
    assert skipped.shadow == ["shadow replay: not replayed: hashed log"]
    assert audit_row({**record, "shadow": "junk"}).shadow == []


def test_reports_are_listed_newest_first_by_run(folder: Path) -> None:
    for name in ("drift-20261130T100000Z-v1", "drift-20261130T110000Z-v2"):
        (folder / f"{name}.html").write_text("x")
        (folder / f"{name}.json").write_text("{}")
    (folder / "latest.json").write_text("{}")
    (folder / "notes.html").write_text("x")
    runs = report_runs(folder)
    assert [r.stem for r in runs] == ["drift-20261130T110000Z-v2", "drift-20261130T100000Z-v1"]
    assert runs[0].html == "drift-20261130T110000Z-v2.html"


# --- live rates --------------------------------------------------------------------


def metric_samples(requests: float, fast: float, errors: float, cost: float) -> list:
    """Prometheus samples (name, labels, value) as a worker's registry yields them."""
    classify = {"endpoint": "/classify"}
    return [
        ("refit_request_duration_seconds_count", classify, requests),
        ("refit_request_duration_seconds_bucket", {**classify, "le": "0.01"}, fast),
        ("refit_request_duration_seconds_bucket", {**classify, "le": "0.1"}, requests),
        ("refit_request_duration_seconds_bucket", {**classify, "le": "+Inf"}, requests),
        ("refit_request_duration_seconds_count", {"endpoint": "/feedback"}, 1000.0),
        ("refit_request_errors_total", {**classify, "reason": "validation"}, errors),
        ("refit_request_errors_total", {**classify, "reason": "model"}, 0.0),
        ("refit_refusals_total", {"cause": "over_budget"}, errors / 2),
        ("refit_predictions_total", {"label": "billing"}, 3 * requests),
        ("refit_predictions_total", {"label": "shipping"}, requests),
        ("refit_compute_cost_usd_total", {"device": "cpu"}, cost),
    ]


def test_rates_come_from_counter_and_bucket_deltas() -> None:
    old = sample_from(metric_samples(100, 50, 2, 0.001), at=10.0)
    new = sample_from(metric_samples(220, 110, 8, 0.003), at=70.0)
    rates = compute_rates(old, new)
    assert rates.window_s == 60.0
    assert rates.requests == 120
    assert rates.requests_per_s == pytest.approx(2.0)
    assert rates.predictions_per_s == pytest.approx(8.0)  # 480 predictions
    # 60 of 120 under 10 ms: the median is the bucket's upper bound; p99 interpolates.
    assert rates.p50_s == pytest.approx(0.01)
    assert rates.p99_s == pytest.approx(0.01 + 0.09 * (118.8 - 60) / 60)
    assert rates.error_rate == pytest.approx(6 / 120)
    assert rates.errors_by_reason == {"validation": 6}
    assert rates.refusals_by_cause == {"over_budget": 3}
    assert rates.cost_per_1k_usd == pytest.approx(1000 * 0.002 / 480)


def test_no_traffic_gives_no_figures_rather_than_nan() -> None:
    same = metric_samples(100, 50, 2, 0.001)
    rates = compute_rates(sample_from(same, 0.0), sample_from(same, 60.0))
    assert not rates.traffic
    assert rates.requests_per_s == 0.0
    assert (rates.p50_s, rates.error_rate, rates.cost_per_1k_usd) == (None, None, None)


def test_a_counter_reset_counts_from_zero() -> None:
    old = Sample(at=0.0, requests=500.0, predictions=500.0)
    new = Sample(at=10.0, requests=20.0, predictions=20.0)
    assert compute_rates(old, new).requests == 20


def test_quantiles_interpolate_like_prometheus() -> None:
    assert bucket_quantile(0.5, {}) is None
    assert bucket_quantile(0.5, {1.0: 0.0, float("inf"): 0.0}) is None
    assert bucket_quantile(0.5, {1.0: 10.0, 2.0: 20.0, float("inf"): 20.0}) == 1.0
    assert bucket_quantile(0.25, {1.0: 10.0, 2.0: 20.0, float("inf"): 20.0}) == 0.5
    # Beyond the last finite bound: that bound, as histogram_quantile answers.
    assert bucket_quantile(0.99, {1.0: 1.0, float("inf"): 10.0}) == 1.0


def test_the_sampler_keeps_one_minute_and_compares_with_its_oldest_sample() -> None:
    clock = [0.0]
    counts = iter(range(0, 1000, 10))
    sampler = RateSampler(
        lambda: metric_samples(float(next(counts)), 0, 0, 0), clock=lambda: clock[0]
    )
    assert sampler.rates() is None  # one sample: nothing to compare yet
    for _ in range(20):  # every 5 s, for 100 s
        clock[0] += 5
        sampler.sample()
    clock[0] += 2  # a page asks 2 s after the last sample: a fresh one is taken
    rates = sampler.rates()
    assert rates is not None
    assert rates.window_s == pytest.approx(57.0)
    assert rates.requests_per_s == pytest.approx(120 / 57)


def test_the_in_process_registry_is_read_without_a_multiprocess_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from refit.monitoring import prometheus_metrics as metrics
    from refit.service.pages.live_rates import read_metrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = sample_from(read_metrics(), 0.0)
    metrics.REQUEST_SECONDS.labels("/classify").observe(0.02)
    metrics.PREDICTIONS.labels("billing").inc(4)
    rates = compute_rates(before, sample_from(read_metrics(), 1.0))
    assert rates.requests == 1
    assert rates.predictions_per_s == pytest.approx(4.0)
    assert 0.01 < (rates.p50_s or 0) <= 0.025


# --- what may be served ----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["../latest.json", "/etc/passwd", "..", "", "latest.json", f"{REPORT}.txt", f"{REPORT}.htm",
     f"sub/{REPORT}.html", f"{REPORT}.html/..", "drift-20261130T115500Z-v9.html"],
)  # fmt: skip
def test_only_existing_report_files_inside_the_folder_are_served(folder: Path, name: str) -> None:
    reports = folder / "reports"
    reports.mkdir()
    (reports / f"{REPORT}.html").write_text("report")
    (reports / "latest.json").write_text("{}")
    assert report_file(reports, f"{REPORT}.html") == (reports / f"{REPORT}.html").resolve()
    assert report_file(reports, name) is None


def test_a_report_link_pointing_outside_is_not_followed(folder: Path) -> None:
    reports = folder / "reports"
    reports.mkdir()
    (folder / "secret.txt").write_text("secret")
    (reports / f"{REPORT}.html").symlink_to(folder / "secret.txt")
    assert report_file(reports, f"{REPORT}.html") is None


class FakeRegistry:
    """Versions of one model in `folder`, one subfolder per version."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, version: str) -> ModelVersion:
        resolved = "v1" if version == "latest" else version
        path = self.folder / resolved
        if not path.is_dir():
            raise ModelNotFoundError(f"no version {version}")
        return ModelVersion("m", resolved, path, NOW, {"test_macro_f1": 0.9})

    def history(self) -> list[dict]:
        return [{"time": "2026-11-30T10:00:00+00:00", "tag": "m:v1"}]

    def champion_tag(self) -> str:
        return "m:v1"


@pytest.mark.parametrize("version", ["v1", "v2", "latest", "..", "../v1", "V1", "", "v1/.."])
def test_only_registered_versions_have_a_card(folder: Path, version: str) -> None:
    (folder / "v1").mkdir()
    (folder / "v1" / "model_card.md").write_text("# card")
    (folder / "v2").mkdir()  # a version without a card
    registry = FakeRegistry(folder)
    expected = (folder / "v1" / "model_card.md").resolve() if version == "v1" else None
    assert model_card(registry, version) == expected  # type: ignore[arg-type]


# --- the middleware ----------------------------------------------------------------


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("not here", status_code=404)(scope, receive, send)


@pytest.fixture
def client(folder: Path) -> Iterator[TestClient]:
    state = folder / "state"
    reports = state / "reports"
    reports.mkdir(parents=True)
    (reports / f"{REPORT}.html").write_text("<p>report</p>")
    (reports / f"{REPORT}.json").write_text("{}")
    (folder / "v1").mkdir()
    (folder / "v1" / "model_card.md").write_text("# card of v1")
    registry = FakeRegistry(folder)
    sampler = RateSampler(lambda: [])
    front = FrontPage(
        not_found,
        core=CoreSettings(state_dir=state, model_name="m"),
        served=lambda: registry.get("v1"),
        sampler=sampler,
    )
    front.sources.registry = registry  # type: ignore[assignment]
    yield TestClient(front)  # no lifespan: the inner app is a bare 404
    sampler.stop()


def test_a_report_is_served_under_its_own_script_policy_in_a_sandbox(
    client: TestClient, folder: Path
) -> None:
    policy = "default-src 'none'; script-src 'sha256-abc='; style-src 'unsafe-inline'"
    page = f'<html><head><meta http-equiv="Content-Security-Policy" content="{policy}">'
    (folder / "state" / "reports" / f"{REPORT}.html").write_text(page + "</head></html>")
    served = client.get(f"/reports/{REPORT}.html").headers["content-security-policy"]
    assert served == f"sandbox allow-scripts; {policy}"


def test_the_middleware_serves_its_pages_and_passes_the_rest_on(client: TestClient) -> None:
    front = client.get("/")
    assert front.status_code == 200
    assert "serving v1" in front.text
    assert "default-src 'none'" in front.headers["content-security-policy"]
    status = client.get("/status.json").json()
    assert status["served"]["version"] == "v1"
    assert status["served"]["test_macro_f1"] == 0.9
    assert status["drift"] is None
    assert status["reports"][0]["stem"] == REPORT
    assert client.get("/docs").headers["content-security-policy"] == CSP
    report = client.get(f"/reports/{REPORT}.html")
    assert report.text == "<p>report</p>"
    # A report that declares no policy of its own runs no script at all.
    assert report.headers["content-security-policy"].startswith("sandbox;")
    assert "script-src" not in report.headers["content-security-policy"]
    assert client.get(f"/reports/{REPORT}.json").headers["content-type"] == "application/json"
    card = client.get("/models/v1/card")
    assert card.text == "# card of v1"
    assert card.headers["content-type"].startswith("text/plain")
    assert client.get("/classify").text == "not here"
    assert client.post("/").text == "not here"


@pytest.mark.parametrize(
    "path",
    ["/reports/../../etc/passwd", "/reports/..%2f..%2fetc%2fpasswd", "/reports//etc/passwd",
     "/reports/latest.json", "/reports/", "/reports/../state/reports/" + REPORT + ".html",
     "/models/v9/card", "/models/latest/card", "/models/../card", "/models/%2e%2e/card"],
)  # fmt: skip
def test_paths_outside_what_is_served_get_404(client: TestClient, path: str) -> None:
    """As the server sees them: uvicorn hands the middleware decoded, unnormalised paths."""
    front = client.app
    assert isinstance(front, FrontPage)
    response = front.respond(path.replace("%2f", "/"))
    assert response is not None
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/models/../v1/card", "/models/v1/card/x", "/docs/", "/x"])
def test_other_paths_are_left_to_the_service(client: TestClient, path: str) -> None:
    front = client.app
    assert isinstance(front, FrontPage)
    assert front.respond(path) is None


def test_sampling_starts_with_the_worker_not_with_its_first_page(folder: Path) -> None:
    # A worker whose first request is the page itself must have a sample from before
    # the traffic the other workers served, or the page reads "no traffic".
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})

    sampler = RateSampler(lambda: [])
    front = FrontPage(
        app,
        core=CoreSettings(state_dir=folder, model_name="m"),
        served=lambda: None,
        sampler=sampler,
    )
    try:
        with TestClient(front):  # the lifespan events, and no request
            deadline = time.monotonic() + 5
            while not sampler.samples and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sampler.samples, "no sample taken at startup"
    finally:
        sampler.stop()


def test_the_embedding_signal_says_what_it_compares_and_its_score_against_threshold() -> None:
    about = "pooled last layer, 32 numbers; 5-NN novelty, one-sided Mann-Whitney p-value"
    signal = {"name": "embedding", "kind": "embedding", "method": "knn", "about": about}
    quiet = {**signal, "value": 0.2, "score": 0.699, "score_threshold": 3.0, "drifted": False}
    view = drift_view({"status": "ok", "signals": [quiet]})
    assert view is not None
    text = text_of(render(page(drift=view)))
    assert f"Embedding signal ({about}): score 0.70, not above its threshold 3.00." in text
    # A summary written before signals said what they compare still shows its score.
    old = {k: v for k, v in quiet.items() if k != "about"} | {"drifted": True, "score": 9.0}
    view = drift_view({"status": "drift", "signals": [old]})
    assert view is not None
    text = text_of(render(page(drift=view)))
    assert "Embedding signal (method knn): score 9.00, above its threshold 3.00." in text
