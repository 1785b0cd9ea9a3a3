"""A real Prometheus scrapes a real refit server under load; every PromQL expression of
the dashboard and of the alert rules must answer from what was scraped, so that a
misspelt metric or label shows up as an empty panel here."""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cases import BAD_REQUESTS
from drift_summaries import write_embedding_drift
from monitoring_files import (
    PROMETHEUS_CONFIG,
    as_probe,
    concrete,
    dashboard_expressions,
    load_yaml,
    metric_names,
    rule_expressions,
    rules,
)

from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer
from refit.testing.prometheus import start_prometheus

LOAD_SECONDS = 15

WINDOW = "1m"  # stands in for $__rate_interval: covers the whole load at 1 s scrapes


def write_drift_summary(state_dir: Path) -> None:
    """A drift check's summary where the server's export reads it: drift in the
    embeddings, none in the length, as a check that found drift would leave it."""
    write_embedding_drift(
        state_dir,
        ago=timedelta(minutes=1),
        rows=5000,
        actual_macro_f1=0.77,
        labelled_rows=120,
    )


def prometheus_config_for(refit_target: str) -> str:
    """The deploy config, scraping the test's servers every second."""
    config = load_yaml(PROMETHEUS_CONFIG)
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / name) for name in config["rule_files"]]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": [refit_target]}]
    return yaml.safe_dump(config)


def drive_load(url: str, seconds: float) -> Counter[str]:
    """Good, bad, refused and feedback traffic from a few threads; counts what came back."""
    from refit import datagen

    texts = datagen.generate(400, seed=5)["text"].tolist()
    long_text = " ".join(texts)[:1900]  # past the served model's 64 tokens: truncated
    ids: list[str] = []
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def note(kind: str, response: httpx.Response) -> None:
        with lock:
            codes[f"{kind} {response.status_code}"] += 1
            if kind == "classify" and response.status_code == 200:
                ids.extend(item["id"] for item in response.json()[:1])

    def singles(seed: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = seed
            while time.monotonic() < deadline:
                i += 1
                note("classify", client.post("/classify", json={"texts": [texts[i % 400]]}))

    def batches() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = 0
            while time.monotonic() < deadline:
                i += 16
                chunk = [texts[(i + k) % 400] for k in range(15)] + [long_text]
                note("classify", client.post("/classify", json={"texts": chunk}))

    def bad_and_feedback() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            i = 0
            while time.monotonic() < deadline:
                _, body, _ = BAD_REQUESTS[i % len(BAD_REQUESTS)]
                headers = {"content-type": "application/json"}
                note("bad", client.post("/classify", content=body, headers=headers))
                if i % 5 == 0:  # a wrong method: an error that is neither 400 nor overload
                    note("get", client.get("/classify"))
                with lock:
                    some = ids[-3:]
                if some:
                    items = [{"id": pid, "label": "billing"} for pid in some]
                    note("feedback", client.post("/feedback", json={"items": items}))
                i += 1
                time.sleep(0.2)

    def bursts() -> None:
        # Many 16-text requests at once overflow REFIT_MAX_IN_FLIGHT_TEXTS: 429s.
        chunk = texts[:16]
        with ThreadPoolExecutor(max_workers=16) as pool:
            while time.monotonic() < deadline:
                for response in pool.map(
                    lambda _: httpx.post(f"{url}/classify", json={"texts": chunk}, timeout=60),
                    range(16),
                ):
                    note("burst", response)
                time.sleep(2)

    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs = [pool.submit(singles, 0), pool.submit(singles, 200), pool.submit(batches),
                pool.submit(bad_and_feedback), pool.submit(bursts)]  # fmt: skip
        for job in jobs:
            job.result()
    return codes


def query(prometheus: RunningServer, expr: str) -> dict[str, Any]:
    response = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}, timeout=10)
    return response.json()


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not found; .ci/run installs it with the Debian package `prometheus`",
)
def test_every_dashboard_and_rule_query_answers_from_a_live_server(
    served_env: dict[str, str], tmp_path: Path
) -> None:
    import torch

    cuda = torch.cuda.is_available()
    env = {
        **served_env,
        # On a GPU machine serve on it, so that the GPU panels have data to show.
        "REFIT_DEVICE": "cuda" if cuda else "cpu",
        # Low enough for the test's bursts to be refused with 429.
        "REFIT_MAX_IN_FLIGHT_TEXTS": "40",
    }
    (tmp_path / "refit").mkdir()
    refit = start_bentoml(env, tmp_path / "refit")
    # The server exports the latest drift summary of its (private) state folder at
    # every scrape: the real export path, from file to /metrics to the alert.
    write_drift_summary(tmp_path / "refit" / "state")
    prometheus: RunningServer | None = None
    try:
        target = refit.url.removeprefix("http://")
        prometheus = start_prometheus(prometheus_config_for(target), tmp_path / "prom")
        prom = prometheus
        wait_until(
            lambda: query(prom, 'up{job="refit"} == 1')["data"]["result"], 30, "first scrape"
        )
        codes = drive_load(refit.url, LOAD_SECONDS)
        # The last requests must be scraped and the rules evaluated on them.
        time.sleep(3)
        check_queries(prom, codes, cuda)
        check_rules_and_alerts(prom)
    finally:
        if prometheus is not None:
            prometheus.stop()
        refit.stop()


def check_queries(prometheus: RunningServer, codes: Counter[str], cuda: bool) -> None:
    for wanted in ("classify 200", "burst 429", "bad 400", "get 405", "feedback 200"):
        assert codes[wanted], f"the load produced no {wanted!r}: {dict(codes)}"
    names = httpx.get(f"{prometheus.url}/api/v1/label/__name__/values").json()["data"]
    present = set(names)

    def why_absent(name: str) -> str | None:
        """Why a metric may be missing in this test, or None if it must be there."""
        if name.startswith("refit_gpu_") and not cuda:
            return "no CUDA device"
        if name == "refit_prediction_log_dropped_total":
            return "no record was dropped (its reasons appear on the first drop)"
        return None

    exprs = [(w, e, False) for w, e in dashboard_expressions()] + rule_expressions()
    failures: list[str] = []
    report: list[str] = []
    for where, raw, is_alert in exprs:
        expr = concrete(raw, WINDOW)
        answers = [query(prometheus, expr)]
        if is_alert:
            answers.append(query(prometheus, as_probe(expr)))
        errors = [a.get("error") for a in answers if a["status"] != "success"]
        if errors:
            failures.append(f"{where}: {errors}")
            continue
        result = answers[-1]["data"]["result"]
        missing = sorted(metric_names(expr) - present)
        excuses = {name: why_absent(name) for name in missing}
        if any(excuse is None for excuse in excuses.values()):
            failures.append(f"{where}: Prometheus never saw {missing}")
        elif result:
            values = [float(series["value"][1]) for series in result]
            if not all(math.isfinite(v) for v in values):
                failures.append(f"{where}: {values}: a ratio or quantile of nothing")
            report.append(f"data  {where}: {len(values)} series, first {values[0]:.4g}")
        elif missing:
            report.append(f"empty {where}: allowed, {'; '.join(filter(None, excuses.values()))}")
        else:
            failures.append(f"{where}: empty result although {sorted(metric_names(expr))} exist")
    print("\n".join(report))
    assert not failures, "\n".join(failures)


def check_rules_and_alerts(prometheus: RunningServer) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
        loaded = [rule for group in groups for rule in group["rules"]]
        return loaded if all(rule["health"] != "unknown" for rule in loaded) else None

    loaded = wait_until(evaluated, 10, "every rule evaluated")
    expected = {rule.get("alert") or rule["record"] for rule in rules()}
    assert {rule["name"] for rule in loaded} == expected
    assert {
        rule["name"]: rule.get("lastError", "") for rule in loaded if rule["health"] != "ok"
    } == {}

    # The drift summary reports drift on one signal: the alert goes pending with its
    # annotation naming that signal and not the one below its threshold.
    def drift_alert() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{prometheus.url}/api/v1/alerts").json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "RefitDriftDetected"]

    (alert,) = wait_until(drift_alert, 10, "RefitDriftDetected to be pending")
    assert alert["labels"]["severity"] == "warning"
    assert "embedding=0.710" in alert["annotations"]["description"]
    assert "n_chars" not in alert["annotations"]["description"]
