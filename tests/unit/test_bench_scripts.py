"""The GPU benchmark scripts parse, and refuse clearly on a machine without a GPU."""

from __future__ import annotations

import http.server
import itertools
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch
from paths import ROOT

BENCH = ROOT / "bench"


@pytest.mark.parametrize("script", ["gpu.sh", "gpu_bundle.sh"])
def test_script_is_valid_bash(script: str) -> None:
    subprocess.run(["bash", "-n", str(BENCH / script)], check=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_benchmark_stops_at_once_without_a_gpu() -> None:
    done = subprocess.run(
        ["bash", str(BENCH / "gpu.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode != 0
    assert "no CUDA device visible" in done.stderr
    assert "== GPU tests" not in done.stdout


# --- serve_bench's pure helpers -------------------------------------------------------
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402
import probe  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
import serve_bench  # noqa: E402
import server_metrics  # noqa: E402
import tables  # noqa: E402

WRK_LINE = (
    '{"requests": 1000, "duration_us": 2000000, "p50_us": 5000, "p95_us": 9000, '
    '"p99_us": 12000, "max_us": 20000, "connect_errors": 1, "read_errors": 0, '
    '"write_errors": 0, "status_errors": 402, "timeouts": 2, "refused": 400, "ok": 596, '
    '"status_429": 390, "status_503": 10, "status_5xx": 1, "status_other": 1, '
    '"no_retry_after": 10, "accepted_p99_lo_us": 30000, "accepted_p99_hi_us": 45000, '
    '"polite": false}'
)


def test_parse_wrk_counts_answers_by_status() -> None:
    load = harness.parse_wrk(f"Running 2s test\n{WRK_LINE}\n")
    assert (load.ok, load.status_429, load.status_503, load.status_5xx) == (596, 390, 10, 1)
    assert load.errors == 1 + 1 + 1 + 2  # other 5xx, other non-2xx, socket, timeouts
    assert load.refused == 400
    assert load.no_retry_after == 10
    assert not load.polite
    assert (load.accepted_p99_lo_ms, load.accepted_p99_hi_ms) == (30.0, 45.0)
    load.texts_per_request = 32
    assert load.req_per_s == pytest.approx(298.0)
    assert load.texts_per_s == pytest.approx(298.0 * 32)


def test_parse_wrk_reads_the_older_summary_and_refuses_none() -> None:
    old = (
        '{"requests": 100, "duration_us": 1000000, "p50_us": 1, "p95_us": 2, "p99_us": 3, '
        '"max_us": 4, "connect_errors": 0, "read_errors": 0, "write_errors": 0, '
        '"status_errors": 7, "timeouts": 0, "refused": 5}'
    )
    load = harness.parse_wrk(old)
    assert load.errors == 2
    assert load.ok_requests == 93
    with pytest.raises(RuntimeError, match="no summary"):
        harness.parse_wrk("wrk: connection refused")


def test_batching_env_selects_the_serving_path() -> None:
    assert harness.batching_env("scheduler") == {"REFIT_BATCHING": "scheduler"}
    assert harness.batching_env("off", legacy=True) == {
        "REFIT_BATCHING": "off",
        "REFIT_ADAPTIVE_BATCHING": "false",
    }
    assert harness.batching_env(False)["REFIT_BATCHING"] == "off"
    assert "REFIT_BATCHING" not in harness.batching_env(True)
    with pytest.raises(ValueError, match="unknown batching mode"):
        harness.batching_env("adaptive")


EXPOSITION = """\
# HELP refit_batch_items Texts in one forward pass of the model.
# TYPE refit_batch_items histogram
refit_batch_items_bucket{le="1.0"} 3.0
refit_batch_items_count 10.0
refit_batch_items_sum 80.0
refit_real_tokens_total 600.0
refit_padded_tokens_total 800.0
refit_refusals_total{cause="over_budget"} 4.0
refit_refusals_total{cause="deadline"} 1.0
refit_queue_texts{pid="11"} 2.0
refit_queue_texts{pid="12"} 3.0
refit_compute_seconds_count{endpoint="/classify"} 10.0
refit_compute_seconds_sum{endpoint="/classify"} 0.5
"""


def test_metrics_deltas_give_texts_per_pass_padding_and_refusals() -> None:
    before = server_metrics.Snapshot.from_text("")
    after = server_metrics.Snapshot.from_text(EXPOSITION)
    assert after.get("refit_queue_texts") == 5.0  # summed over workers
    point = after.since(before)
    assert point.mean_batch == 8.0
    assert point.padding_efficiency == 0.75
    assert point.mean_pass_ms == pytest.approx(50.0)
    assert point.refusals == {"deadline": 1.0, "over_budget": 4.0}
    nothing = after.since(after)
    assert math.isnan(nothing.mean_batch)
    assert nothing.refusals == {}


def test_probe_summary_by_status() -> None:
    samples = [probe.Sample(200, False, float(ms)) for ms in range(10, 110, 10)]
    samples += [probe.Sample(429, True, 2.0), probe.Sample(429, False, 4.0)]
    samples += [probe.Sample(503, True, 2100.0), probe.Sample(500, False, 1.0)]
    s = probe.summarise(samples)
    assert (s["n"], s["ok"], s["status_429"], s["status_503"], s["status_5xx"]) == (14, 10, 2, 1, 1)
    assert s["no_retry_after"] == 1
    assert s["ok_p50_ms"] == pytest.approx(55.0)
    assert s["429_max_ms"] == 4.0
    assert s["429_p99_ms"] == pytest.approx(3.98)
    assert math.isnan(probe.percentile([], 50))
    assert probe.percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_saturation_is_where_goodput_stops_rising() -> None:
    sweep = [(1, 60.0), (8, 128.0), (64, 160.0), (256, 158.0), (1024, 150.0)]
    assert scenarios.saturation_level(sweep) == 64
    assert scenarios.saturation_level([(8, 10.0), (64, 20.0), (256, 40.0)]) == 256
    assert scenarios.saturation_level([]) is None


def test_contenders_flag() -> None:
    assert serve_bench.contenders("tiny,raw") == ["raw", "tiny-scheduler", "tiny-bentoml"]
    assert serve_bench.contenders(" bentoml , scheduler") == ["scheduler", "bentoml"]
    assert serve_bench.contenders("haproxy,off") == ["off", "haproxy"]
    assert serve_bench.contenders("onnx-int8,torch,onnx-fp32") == [
        "torch",
        "onnx-fp32",
        "onnx-int8",
    ]
    with pytest.raises(ValueError, match="unknown contenders: batched"):
        serve_bench.contenders("batched")
    quick = serve_bench.make_plan(serve_bench.parse_args(["--quick", "--concurrency", "4,16"]))
    assert quick.levels == [4, 16]
    assert quick.seconds < scenarios.Plan().seconds


def _load(kind: str, connections: int, ok: int, **extra: object) -> harness.LoadResult:
    load = harness.LoadResult(ok, 1.0, 1.0, 1.0, 1.0, 0, ok=ok, **extra)  # type: ignore[arg-type]
    load.kind, load.connections = kind, connections
    return load


def _lone(*ms: float) -> scenarios.LoneResult:
    return scenarios.LoneResult([probe.Sample(200, False, m) for m in ms])


def _runs() -> dict[str, scenarios.ContenderResult]:
    sched = scenarios.ContenderResult("scheduler", "scheduler", "champion", 2)
    sched.loads = [_load("1-text", 64, 180)]
    sched.lone, sched.after_spike, sched.lone32 = _lone(11, 12, 13), _lone(12), _lone(300)
    sched.spaced = _lone(16, 15, 17)
    sat_load = _load("1-text", 64, 180, polite=False)
    over = _load("1-text", 512, 171, polite=False, status_429=900, accepted_p99_hi_ms=2050.0)
    over.server = server_metrics.PointMetrics(compute_count=10, compute_s=1.0)
    probed = {"429_p99_ms": 12.0, "status_429": 40, "no_retry_after": 0, "status_5xx": 0}
    sched.saturation = scenarios.SaturationResult(64, [], sat_load, over, {}, probed)
    bento = scenarios.ContenderResult("bentoml", "bentoml", "champion", 2)
    bento.loads = [_load("1-text", 64, 60)]
    torch = scenarios.ContenderResult(report.TORCH, "scheduler", "champion", 2)
    torch.loads, torch.lone = [_load("1-text", 64, 120)], _lone(20, 24, 26)
    tiny = [scenarios.ContenderResult(n, n[5:], "tiny", 2) for n in report.TINY_PAIR]
    tiny[0].loads, tiny[1].loads = [_load("1-text", 64, 900)], [_load("1-text", 64, 250)]
    return {"scheduler": sched, "bentoml": bento, "torch": torch, **{t.name: t for t in tiny}}


def test_ratios_and_targets_against_the_same_run() -> None:
    from raw import RawLatency, RawResult

    raw = RawResult({"plain padding, sorted, batch 32": 190.0, "plain padding, arrival": 90.0})
    lat = RawLatency(1, [10.0], [10.0], [250.0], [240.0])
    base = report.Baselines(raw, lat, lat, budget_ms=2000.0, cores=2)
    runs = _runs()
    r = report.ratios(base, runs)
    assert r["scheduler 1-text c=64 served/raw"] == pytest.approx(180 / 190)
    assert r["1-text c=64 scheduler/bentoml"] == pytest.approx(3.0)
    assert r["scheduler lone p50 / raw batch-1 (worker threads)"] == pytest.approx(1.2)
    assert r["scheduler lone-32 p50 / raw batch-32 (worker threads)"] == pytest.approx(1.25)
    assert r["scheduler goodput 8x / saturation"] == pytest.approx(0.95)
    assert r["scheduler spaced idle p50 / raw batch-1 (worker threads)"] == pytest.approx(1.6)
    assert r["scheduler after-spike p50 / spaced idle p50"] == pytest.approx(0.75)
    assert r["tiny 1-text c=64 scheduler/bentoml req/s"] == pytest.approx(3.6)
    assert r["1-text c=64 scheduler/torch"] == pytest.approx(1.5)
    assert r["lone p50 scheduler/torch"] == pytest.approx(12 / 24)
    assert not any("onnx" in key for key in r)  # no backend contender ran
    int8 = scenarios.ContenderResult("onnx-int8", "scheduler", "champion", 2)
    int8.loads, int8.lone = [_load("1-text", 64, 210)], _lone(9, 10, 11)
    with_int8 = report.ratios(base, {**runs, "onnx-int8": int8})
    assert with_int8["1-text c=64 onnx-int8/torch"] == pytest.approx(210 / 120)
    assert with_int8["lone p50 onnx-int8/torch"] == pytest.approx(10 / 24)
    verdicts = {t.target: t.verdict for t in report.targets(base, runs)}
    assert set(verdicts.values()) == {"pass"}, verdicts
    runs["bentoml"].loads = [_load("1-text", 64, 100)]
    assert "FAIL" in {t.verdict for t in report.targets(base, runs)}
    text = tables.render(base, runs)
    assert "| target (refit's scheduler) | measured | verdict |" in text
    assert "texts/s/core" in text


def test_a_tiny_point_is_the_median_of_its_repeats_and_shows_each() -> None:
    repeats = [_load("1-text", 64, rate) for rate in (700, 950, 900)]
    assert scenarios.median_by_rate(repeats) is repeats[2]
    runs = _runs()
    runs["tiny-scheduler"].repeats = repeats
    runs["tiny-scheduler"].loads = [scenarios.median_by_rate(repeats)]
    text = tables.render(report.Baselines(cores=2), runs)
    assert "| tiny-scheduler | 64 | 900 | 700, 950, 900 |" in text


def test_the_scheduler_behind_haproxy_gets_its_own_overload_targets() -> None:
    base = report.Baselines(budget_ms=2000.0, cores=2)
    runs = _runs()
    fronted = scenarios.ContenderResult(report.FRONTED, "scheduler", "champion", 2)
    sat_load = _load("1-text", 64, 150, polite=False)
    over = _load("1-text", 512, 120, polite=False, status_429=30000, accepted_p99_hi_ms=900.0)
    sat_load.cpu_s, over.cpu_s = {"server": 1.5}, {"server": 1.5, "haproxy": 0.25}
    probed = {"429_p99_ms": 70.0, "status_429": 60, "no_retry_after": 0, "status_5xx": 0}
    fronted.saturation = scenarios.SaturationResult(64, [], sat_load, over, {}, probed)
    fronted.loads = [_load("1-text", 64, 150)]
    runs[report.FRONTED] = fronted
    ratios = report.ratios(base, runs)
    assert ratios["haproxy goodput 8x / saturation"] == pytest.approx(0.8)
    # 10 ms of server CPU per answer at saturation, 12.5 ms at 8x
    assert ratios["haproxy server CPU per 2xx, 8x / saturation"] == pytest.approx(1.25)
    verdicts = {t.target: t.verdict for t in report.targets(base, runs)}
    assert verdicts["behind HAProxy: goodput at 8x >= 0.9 of saturation"] == "FAIL"
    assert verdicts["behind HAProxy: 429 answered p99 <= 50 ms (probe, n=60)"] == "FAIL"
    assert verdicts["behind HAProxy: refusals without Retry-After (429/503)"] == "pass"
    assert verdicts["goodput at 8x >= 0.9 of saturation"] == "pass"  # the scheduler's own
    text = tables.render(base, runs)
    assert "| haproxy | 64 |" in text  # its saturation row
    assert "| 0.25 | 10.0 → 12.5 |" in text  # HAProxy's cores; the server's ms per answer
    assert "| haproxy | – |" not in text  # no row of lone requests: none were measured


def test_targets_without_measurements_are_not_applicable() -> None:
    verdicts = [t.verdict for t in report.targets(report.Baselines(), {})]
    assert set(verdicts) == {"n/a"}


def test_json_payload_is_strict() -> None:
    cleaned = serve_bench.finite({"a": math.nan, "b": [1.0, math.inf], "c": (2, "x")})
    assert cleaned == {"a": None, "b": [1.0, None], "c": [2, "x"]}


class _Cycling(http.server.BaseHTTPRequestHandler):
    """Answers 200, 429 with Retry-After, 503 without it, 500, in turn."""

    protocol_version = "HTTP/1.1"
    turn = itertools.count()
    answers = ((200, True), (429, True), (503, False), (500, False))

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, retry_after = self.answers[next(self.turn) % len(self.answers)]
        self.send_response(status)
        if retry_after and status != 200:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs Debian's wrk")
def test_classify_lua_counts_statuses_and_missing_retry_after(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Cycling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text('{"texts": ["hello"]}\n')
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        load = harness.run_wrk(url, bodies, connections=2, seconds=1, polite=False)
    finally:
        server.shutdown()
        server.server_close()
    assert min(load.ok, load.status_429, load.status_503, load.status_5xx) > 0
    assert load.no_retry_after == load.status_503  # the 429s carried it
    assert load.refused == load.status_429 + load.status_503
    assert load.errors == load.status_5xx
    assert load.accepted_p99_lo_ms <= load.accepted_p99_hi_ms
    assert not load.polite


def test_probe_times_each_request_in_an_open_loop() -> None:
    _Cycling.turn = itertools.count()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Cycling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        samples = probe.probe(url, [b'{"texts": ["a"]}'], seconds=0.4, rate=20, workers=2)
        lone = probe.series(url, [b"{}"] * 3, spacing_s=0.05)
    finally:
        server.shutdown()
        server.server_close()
    s = probe.summarise(samples)
    assert s["n"] == 8
    assert (s["ok"], s["status_429"], s["status_503"], s["status_5xx"]) == (2, 2, 2, 2)
    assert s["no_retry_after"] == 2  # the 503s
    assert [x.at for x in samples] == sorted(x.at for x in samples)
    assert len(lone) == 3
    assert lone[2].at >= 0.1


def test_busy_counts_refit_gauges_and_bentoml_requests_in_progress() -> None:
    assert server_metrics.busy_from_text(EXPOSITION) == 5.0  # queue_texts, two workers
    bentoml = (
        'bentoml_service_request_in_progress{endpoint="/classify",runner_name="refit"} 2.0\n'
        'bentoml_service_request_in_progress{endpoint="/metrics",runner_name="refit"} 1.0\n'
        "refit_in_flight_texts 0.0\n"
    )
    assert server_metrics.busy_from_text(bentoml) == 2.0
    assert server_metrics.busy_from_text("") == 0.0


def test_the_real_text_retrain_split_keeps_each_sections_share_apart() -> None:
    from real_text_retrain import split_unseen

    frame = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": ["a"] * 20 + ["b"] * 10})
    labelled, held = split_unseen(frame, 0.5, seed=3)
    assert labelled["label"].value_counts().to_dict() == {"a": 10, "b": 5}
    assert held["label"].value_counts().to_dict() == {"a": 10, "b": 5}
    assert set(labelled["text"]).isdisjoint(held["text"])
    assert len(labelled) + len(held) == len(frame)


def test_the_real_text_set_drops_near_duplicates_as_training_counts_them() -> None:
    from real_text import Package, unique_texts

    def package(name: str, section: str, short: str) -> Package:
        return Package(name, name, section, short, ("Plays sound files.",))

    kept = unique_texts(
        [
            package("a", "sound", "audio player 2"),
            package("b", "sound", "Audio player, 3!"),  # same text once normalised: dropped
            package("c", "games", "chess engine"),
            package("d", "text", "Chess engine."),  # same text under two sections: both go
            package("e", "net", "web server"),
        ]
    )
    assert [p.name for p in kept] == ["a", "e"]


def test_cpu_meter_reads_a_process_tree(tmp_path: Path) -> None:
    """A fake /proc: a root, its child, a grandchild, and an unrelated process."""
    from cpu_meter import TICKS_PER_S, tree_cpu_s

    rows = {  # pid: (name, ppid, utime, stime)
        10: ("bentoml", 1, 100, 50),
        11: ("python (worker) x", 10, 300, 20),  # a name with spaces and parentheses
        12: ("python", 11, 5, 5),
        20: ("wrk", 1, 999, 999),
    }
    for pid, (name, ppid, utime, stime) in rows.items():
        (tmp_path / str(pid)).mkdir()
        fields = ["S", ppid, pid, 0, 0, 0, 0, 0, 0, 0, 0, utime, stime, 0, 0]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) {' '.join(map(str, fields))}")
    assert tree_cpu_s(10, tmp_path) == pytest.approx(480 / TICKS_PER_S)
    assert tree_cpu_s(11, tmp_path) == pytest.approx(330 / TICKS_PER_S)
    assert tree_cpu_s(99, tmp_path) == 0


def _run_unrecorded(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script with `--no-record` (and `env` added to the environment); it
    must succeed and leave RESULTS.md be."""
    results = (BENCH / "RESULTS.md").read_text()
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--no-record"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert (BENCH / "RESULTS.md").read_text() == results
    return done


def test_gil_bench_times_both_forward_passes_without_recording() -> None:
    done = _run_unrecorded("gil_bench.py", "--model", "tiny", "--texts", "3", "--passes", "5")
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| eager", "| traced"))]
    assert [row.split(" | ")[0] for row in rows] == ["| eager", "| traced"] * 2  # live, then table
    assert "tiny, 3 texts" in done.stdout


def test_adamw_step_times_both_optimisers_and_finds_the_same_weights() -> None:
    done = _run_unrecorded("adamw_step.py", "--model", "tiny", "--steps", "2")
    rows = [line.split(" | ")[0] for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["| torch's default", "| fused", "| fused / default"]
    apart = float(done.stdout.rsplit("after the same steps: ", 1)[1].rstrip().rstrip("."))
    assert apart < 1e-5  # the same update, up to rounding


def test_worker_load_loads_onnx_without_torch_and_the_baseline_with_it(
    served_env: dict[str, str],
) -> None:
    home = served_env["BENTOML_HOME"]
    done = _run_unrecorded(
        "worker_load.py", "--home", home, "--runs", "1", "--backend", "onnx", env=served_env
    )
    rows = [line.split(" | ") for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [(row[0], row[-1]) for row in rows[1:]] == [
        ("| tokenizer.json alone", "False |"),
        ("| transformers imported (before)", "True |"),
    ]
    assert "Champion served on onnx-fp32 (REFIT_BACKEND=onnx)" in done.stdout


# --- request_profile's reading of py-spy's stacks ---------------------------------------
import request_profile  # noqa: E402


def test_profile_samples_go_to_the_part_and_thread_they_ran_in(tmp_path: Path) -> None:
    raw = tmp_path / "worker.txt"
    raw.write_text(
        "main (bentoml/serve.py:1);Server.run (uvicorn/server.py:67);"
        "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:522) 7\n"
        "Thread.run (threading.py:982);Scheduler._run (service/scheduling/scheduler.py:178);"
        "settle_all (core/loop_handoff.py:27) 3\n"
        "Thread.run (threading.py:982);LogWriter.run (monitoring/log_writer.py:80);"
        "LogStore.insert (monitoring/log_store.py:90) 2\n"
        "Thread.run (threading.py:982);worker (concurrent/futures/thread.py:83);"
        "Module._call_impl (torch/nn/modules/module.py:1789) 5\n"
        "not a stack line\n"
    )
    profile = request_profile.Profile("scheduler", requests=100)
    request_profile.read_raw(raw, profile)
    assert profile.samples == {
        "HTTP server (uvicorn)": 7,
        "refit scheduler": 3,
        "prediction log and metrics (refit)": 2,
        "model pass": 5,
    }
    assert profile.threads == {
        "event loop": 7,
        "model thread": 3,
        "log writer": 2,
        "other threads": 5,
    }
    assert profile.ms_per_request(7, rate=100) == pytest.approx(0.7)  # 70 ms over 100


def test_profile_table_compares_the_scheduler_with_bentoml() -> None:
    ours = request_profile.Profile("scheduler", requests=100, seconds=1.0)
    theirs = request_profile.Profile("bentoml", requests=100, seconds=1.0)
    ours.samples.update({"refit scheduler": 4, "BentoML": 1})
    theirs.samples.update({"BentoML": 4})
    ours.threads.update({"event loop": 5})
    theirs.threads.update({"event loop": 4})
    text = request_profile.table([ours, theirs], rate=100)
    assert "| refit scheduler | 0.400 | 0.000 | – |" in text
    assert "| BentoML | 0.100 | 0.400 | 0.25 |" in text
    assert "| all | 0.500 | 0.400 | 1.25 |" in text
    assert "scheduler 100/s, bentoml 100/s" in text
