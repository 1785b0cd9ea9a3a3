"""Several replicas behind a real HAProxy, one shared PostgreSQL log, one champion.

One cluster per module, all on 127.0.0.1 with free ports and temporary folders, every
process stopped by PID: PostgreSQL; a tiny champion trained by `refit train` into a
shared REFIT_MODEL_STORE and REFIT_STATE_DIR, and a second version beside it; three
replicas (`bentoml serve`, one worker each, each with its own BENTOML_HOME); HAProxy
with `/readyz` health checks and retries; `refit watch` as its own process; Prometheus
scraping every replica. A steady client sends one text about every 20 ms through
HAProxy and keeps every answer. The tests run in file order: traffic first reaches an
empty log, metrics are compared before a replica is killed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml
from paths import ROOT

from refit import datagen
from refit.testing.bentoml_server import start_replica
from refit.testing.haproxy import RunningHAProxy, haproxy_binary, start_haproxy
from refit.testing.postgres import (
    RunningPostgres,
    pause_postgres,
    postgres_bin_dir,
    resume_postgres,
    start_postgres,
)
from refit.testing.processes import RunningServer
from refit.testing.prometheus import start_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPLICAS = ("r0", "r1", "r2")
RELOAD_INTERVAL_S = 1.0
MODEL = "replica-classifier"


@dataclass
class Cluster:
    work: Path
    env: dict[str, str]  # what every replica and every `refit` command shares
    postgres: RunningPostgres
    pg_bin: Path
    versions: tuple[str, str]  # the champion, and a second version to promote
    replicas: dict[str, RunningServer] = field(default_factory=dict)
    proxy: RunningHAProxy | None = None
    prometheus: RunningServer | None = None
    watcher: subprocess.Popen[bytes] | None = None

    def refit(self, *args: str, timeout: float = 300) -> str:
        """`refit ARGS` in a process of its own (own BENTOML_HOME, shared store); stdout."""
        env = {**os.environ, **self.env, "BENTOML_HOME": str(self.work / "cli-home")}
        done = subprocess.run(
            [sys.executable, "-m", "refit", *args],
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"refit {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start_replica(self, name: str, port: int | None = None) -> RunningServer:
        server = start_replica(self.env, self.work / name, port=port)
        self.replicas[name] = server
        return server

    def logged_ids(self) -> set[str]:
        engine = sa.create_engine(self.postgres.url)
        try:
            with engine.connect() as conn:
                return {row[0] for row in conn.execute(sa.text("SELECT id FROM predictions"))}
        finally:
            engine.dispose()

    @property
    def url(self) -> str:
        assert self.proxy is not None
        return self.proxy.url


def _shared_env(work: Path, tiny_base_model: Path, log_url: str) -> dict[str, str]:
    return {
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
        "BENTOML_DO_NOT_TRACK": "true",
        "REFIT_MODEL_STORE": str(work / "shared" / "models"),
        "REFIT_STATE_DIR": str(work / "shared" / "state"),
        "REFIT_MODEL_NAME": MODEL,
        "REFIT_DEVICE": "cpu",
        "REFIT_BASE_MODEL": str(tiny_base_model),
        "REFIT_GENERATED_ROWS": "400",
        "REFIT_EPOCHS": "1",
        "REFIT_LEARNING_RATE": "1e-3",
        "REFIT_MAX_LENGTH": "64",
        "REFIT_DRIFT_REFERENCE_ROWS": "300",
        "REFIT_DRIFT_MIN_WINDOW_SIZE": "100",
        "REFIT_PREDICTION_LOG_URL": log_url,
        "REFIT_WORKERS": "1",
        "REFIT_TORCH_THREADS": "1",
        "REFIT_RELOAD_INTERVAL_S": str(RELOAD_INTERVAL_S),
        # A response waits this long for its records (default 2 s): shorter, so that the
        # steady client gets several answers while the database is down.
        "REFIT_LOG_CONFIRM_TIMEOUT_S": "0.5",
        # `refit watch` checks drift here; it must not retrain in the middle of the test.
        "REFIT_RETRAIN_AFTER_DRIFT_CHECKS": "100",
        "REFIT_RETRAIN_ACCURACY_FLOOR": "0",
    }


def _versions(cluster: Cluster) -> tuple[str, str]:
    """The champion (the first `refit train`), and the other version (the second)."""
    state = cluster.work / "shared" / "state" / "models" / MODEL / "champion.json"
    champion = json.loads(state.read_text())["tag"].split(":", 1)[1]
    store = cluster.work / "shared" / "models" / MODEL
    (other,) = [p.name for p in store.iterdir() if p.is_dir() and p.name != champion]
    return champion, other


def _prometheus_config(cluster: Cluster) -> str:
    targets = [server.url.removeprefix("http://") for server in cluster.replicas.values()]
    job = {
        "job_name": "refit",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": targets}],
    }
    return yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_base_model: Path) -> Iterator[Cluster]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian package `postgresql`)")
    if haproxy_binary() is None or shutil.which("prometheus") is None:
        pytest.skip("needs HAProxy and Prometheus (Debian packages; .ci/run installs them)")
    work = tmp_path_factory.mktemp("replicas")
    postgres = start_postgres(bin_dir, database="replicas")
    cluster = Cluster(
        work, _shared_env(work, tiny_base_model, postgres.url), postgres, bin_dir, ("", "")
    )
    try:
        cluster.refit("train")  # the champion, trained into the shared store
        with ThreadPoolExecutor(len(REPLICAS) + 1) as pool:
            # A second version (another seed: not champion) while the replicas start.
            second = pool.submit(cluster.refit, "train", "--seed", "7")
            list(pool.map(cluster.start_replica, REPLICAS))
            second.result()
        cluster.versions = _versions(cluster)
        backends = {name: server.url for name, server in cluster.replicas.items()}
        cluster.proxy = start_haproxy(
            backends, work / "haproxy", config=ROOT / "deploy" / "haproxy" / "haproxy.cfg"
        )
        cluster.prometheus = start_prometheus(_prometheus_config(cluster), work / "prometheus")
        watch_log = (work / "watch.log").open("wb")
        cluster.watcher = subprocess.Popen(
            [sys.executable, "-m", "refit", "watch", "--interval", "10s"],
            env={**os.environ, **cluster.env, "BENTOML_HOME": str(work / "watch-home")},
            stdout=watch_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        watch_log.close()
        yield cluster
    finally:
        _stop_all(cluster)


def _stop_all(cluster: Cluster) -> None:
    if cluster.watcher is not None and cluster.watcher.poll() is None:
        os.killpg(cluster.watcher.pid, 15)
        try:
            cluster.watcher.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.watcher.pid, 9)
            cluster.watcher.wait(timeout=10)
    for running in (cluster.prometheus, cluster.proxy):
        if running is not None:
            running.stop()
    for server in cluster.replicas.values():
        server.stop()
    cluster.postgres.stop()


# --- a steady client and what it saw ----------------------------------------------------


@dataclass
class Answer:
    at: float  # time.monotonic() when the answer came
    status: int  # 0: no HTTP answer at all
    pid: str = ""  # the prediction id, for a 200
    version: str = ""


@dataclass
class SteadyClient:
    """One text about every 20 ms through HAProxy; bounded in count and in time."""

    url: str
    max_requests: int = 6000
    max_seconds: float = 180
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)

    def _run(self) -> None:
        texts = datagen.generate(500, seed=31)["text"].tolist()
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=30) as client:
            for i in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                body = {"texts": [texts[i % len(texts)]]}
                try:
                    response = client.post(f"{self.url}/classify", json=body)
                except httpx.HTTPError:
                    self.answers.append(Answer(time.monotonic(), 0))
                    continue
                answer = Answer(time.monotonic(), response.status_code)
                if response.status_code == 200:
                    (item,) = response.json()
                    answer.pid, answer.version = item["id"], item["model_version"]
                self.answers.append(answer)
                time.sleep(0.02)

    @property
    def acknowledged(self) -> set[str]:
        return {a.pid for a in self.answers if a.status == 200}

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]


def _wait_for(predicate: object, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


def metrics_of(url: str) -> str:
    """A replica's /metrics; a replica that does not answer fails the test with the
    end of its log."""
    try:
        return httpx.get(f"{url}/metrics", timeout=30).text
    except httpx.HTTPError as exc:
        raise AssertionError(f"{url}/metrics: {exc!r}") from exc


def served_predictions(url: str) -> float:
    """refit_predictions_total of one replica, summed over labels, from its /metrics."""
    text = metrics_of(url)
    pattern = r"^refit_predictions_total\{[^}]*\} ([0-9.e+]+)$"
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def _served_version(url: str) -> str:
    response = httpx.post(f"{url}/classify", json={"texts": ["where is my parcel"]}, timeout=10)
    response.raise_for_status()
    return str(response.json()[0]["model_version"])


def _retries(proxy: RunningHAProxy) -> dict[str, int]:
    """Requests HAProxy sent again (retries) and to another replica (redispatches)."""
    states = proxy.server_states().values()
    return {
        "retries": sum(int(s["wretr"] or 0) for s in states),
        "redispatches": sum(int(s["wredis"] or 0) for s in states),
    }


def _wait_logged(cluster: Cluster, ids: set[str], timeout: float) -> set[str]:
    """The ids still missing from the log after waiting up to `timeout` for them."""
    missing = set(ids)
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        missing -= cluster.logged_ids()
        if missing:
            time.sleep(0.5)
    return missing


# --- the tests, in the order they run ---------------------------------------------------


def test_one_log_holds_what_every_replica_served_and_one_drift_check_covers_it(
    cluster: Cluster,
) -> None:
    before = {name: served_predictions(s.url) for name, s in cluster.replicas.items()}
    texts = datagen.generate(200, seed=41)["text"].tolist()
    ids = []
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        for text in texts:
            response = client.post("/classify", json={"texts": [text]})
            assert response.status_code == 200, response.text
            ids.append(response.json()[0]["id"])
    served = {n: served_predictions(s.url) - before[n] for n, s in cluster.replicas.items()}
    assert sum(served.values()) == 200
    assert all(n > 0 for n in served.values()), served  # every replica took its share
    assert not set(ids) - cluster.logged_ids()  # acknowledged: already committed

    output = cluster.refit("drift", "--window", "10m")
    window = re.search(r"window: 10m \(.*\), (\d+) predictions", output)
    assert window is not None, output
    assert int(window.group(1)) == 200, output  # the whole window: every replica's rows
    print(f"\nserved per replica {served}; one drift check over {window.group(1)} predictions")


def test_prometheus_sees_each_replica_and_their_sum_matches_the_client(cluster: Cluster) -> None:
    assert cluster.prometheus is not None
    prometheus = cluster.prometheus.url

    def per_instance() -> dict[str, float]:
        query = "sum by (instance) (refit_predictions_total)"
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10)
        return {
            r["metric"]["instance"]: float(r["value"][1]) for r in answer.json()["data"]["result"]
        }

    def direct() -> dict[str, float]:
        return {
            s.url.removeprefix("http://"): served_predictions(s.url)
            for s in cluster.replicas.values()
        }

    # Prometheus has caught up when each instance's series equals the replica's own count.
    assert _wait_for(lambda: per_instance() == direct(), 15, 0.5), (per_instance(), direct())
    start = per_instance()
    with SteadyClient(cluster.url, max_seconds=6) as client:
        time.sleep(6)
    assert not client.failed
    assert _wait_for(lambda: per_instance() == direct(), 15, 0.5), (per_instance(), direct())
    end = per_instance()
    assert len(end) == len(REPLICAS)
    grown = {instance: end[instance] - start[instance] for instance in end}
    assert all(n > 0 for n in grown.values()), grown
    assert sum(grown.values()) == len(client.acknowledged)
    print(f"\nPrometheus, per replica: {grown}; client: {len(client.acknowledged)} answers")


def test_a_promotion_reaches_every_replica_without_a_failed_request(cluster: Cluster) -> None:
    old, new = cluster.versions
    assert {_served_version(s.url) for s in cluster.replicas.values()} == {old}
    history = cluster.work / "shared" / "state" / "models" / MODEL / "promotions.jsonl"
    with SteadyClient(cluster.url) as client:
        time.sleep(1)
        cluster.refit("models", "promote", new)
        # When the champion pointer changed: the promotion log's time of the event.
        event = json.loads(history.read_text().splitlines()[-1])
        assert event["tag"] == f"{MODEL}:{new}"
        promoted = datetime.fromisoformat(event["time"]).timestamp()
        arrived: dict[str, float] = {}

        def everywhere() -> bool:
            for name, server in cluster.replicas.items():
                if name not in arrived and _served_version(server.url) == new:
                    arrived[name] = time.time() - promoted
            return len(arrived) == len(cluster.replicas)

        # Every replica gets there by itself (the reload interval, then loading and warming
        # the new version up); the bound only ends a test that would otherwise hang, so it
        # is generous: on a loaded machine the load alone took 13-14 s.
        assert _wait_for(everywhere, RELOAD_INTERVAL_S + 90, 0.1), arrived
        time.sleep(1)
    assert not client.failed, client.failed
    assert client.answers[-1].version == new
    slowest = max(arrived.values())
    print(
        f"\npromotion: new version served by every replica {slowest:.1f} s after the "
        f"champion pointer changed ({ {k: round(v, 1) for k, v in arrived.items()} }); "
        f"{len(client.answers)} requests, {len(client.failed)} failed"
    )


def test_a_killed_replica_loses_no_acknowledged_prediction_and_rejoins(cluster: Cluster) -> None:
    proxy = cluster.proxy
    assert proxy is not None
    victim = "r1"
    port = int(cluster.replicas[victim].url.rsplit(":", 1)[1])
    retried_before = _retries(proxy)
    with SteadyClient(cluster.url) as client:
        time.sleep(2)
        killed = time.monotonic()
        cluster.replicas[victim].kill_hard()
        assert _wait_for(lambda: proxy.server_states()[victim]["status"] == "DOWN", 10)
        marked_down = time.monotonic() - killed
        time.sleep(2)
        restarted = time.monotonic()
        cluster.start_replica(victim, port=port)
        ready = time.monotonic() - restarted
        assert _wait_for(lambda: proxy.server_states()[victim]["status"] == "UP", 20)
        rejoined = time.monotonic() - restarted
        taken = int(proxy.server_states()[victim]["stot"])
        assert _wait_for(lambda: int(proxy.server_states()[victim]["stot"]) > taken, 10)
        time.sleep(1)
    retried = {k: v - retried_before[k] for k, v in _retries(proxy).items()}
    missing = _wait_logged(cluster, client.acknowledged, 20)
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log"
    # HAProxy sends a request whose replica died again, to another (retry-on
    # empty-response conn-failure, option redispatch): no failure reaches the client.
    assert not client.failed, client.failed
    print(
        f"\nkill -9 of {victim}: HAProxy marked it down after {marked_down:.1f} s; "
        f"{len(client.answers)} requests, {len(client.failed)} failed, HAProxy {retried}, "
        f"{len(client.acknowledged)} acknowledged, {len(missing)} missing from the log; "
        f"restarted replica ready in {ready:.1f} s, UP in HAProxy {rejoined:.1f} s after restart"
    )


def test_a_database_restart_loses_no_acknowledged_prediction(cluster: Cluster) -> None:
    def unconfirmed() -> float:
        total = 0.0
        for server in cluster.replicas.values():
            try:
                text = metrics_of(server.url)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{server.log_text()[-3000:]}") from exc
            found = re.search(
                r"^refit_prediction_log_unconfirmed_responses_total ([0-9.e+]+)$", text, re.M
            )
            total += float(found.group(1)) if found else 0.0
        return total

    unconfirmed_before = unconfirmed()
    with SteadyClient(cluster.url) as client:
        time.sleep(2)
        pause_postgres(cluster.postgres)
        stopped = time.monotonic()
        time.sleep(4)
        resume_postgres(cluster.postgres, cluster.pg_bin)
        down_for = time.monotonic() - stopped
        time.sleep(4)
    started = time.monotonic()
    missing = _wait_logged(cluster, client.acknowledged, 30)
    caught_up = time.monotonic() - started
    assert not missing, f"{len(missing)} acknowledged predictions are not in the log"
    assert not client.failed, client.failed
    during = [a for a in client.answers if stopped <= a.at <= stopped + down_for]
    print(
        f"\nPostgreSQL down {down_for:.1f} s under load: {len(client.answers)} requests "
        f"({len(during)} answered while it was down), {len(client.failed)} failed, "
        f"{unconfirmed() - unconfirmed_before:.0f} answered unconfirmed; every one of "
        f"{len(client.acknowledged)} acknowledged predictions in the log "
        f"{caught_up:.1f} s after the load stopped"
    )


def test_refit_watch_checked_the_shared_log_all_along(cluster: Cluster) -> None:
    assert cluster.watcher is not None
    assert cluster.watcher.poll() is None, (cluster.work / "watch.log").read_text()[-3000:]
    state_file = cluster.work / "shared" / "state" / "watch" / "state.json"
    assert _wait_for(lambda: state_file.exists(), 30, 0.5)
    state = json.loads(state_file.read_text())
    assert state["checks"] >= 1, state
    assert state["retrains"] == 0
    print(f"\nrefit watch: {state['checks']} checks, {state['failures']} failed rounds")
