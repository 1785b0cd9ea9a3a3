"""Pieces shared by the serving benchmarks: bodies, wrk, a server, the raw limit."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = HERE / "classify.lua"


# --- request bodies -----------------------------------------------------------------
def request_bodies(work: Path, n: int) -> tuple[list[str], dict[str, Path]]:
    """Texts of realistic, mixed length, and JSON bodies of 1 and 32 texts."""
    from training import synthetic

    texts = synthetic.generate(n, seed=20261127)["text"].tolist()
    work.mkdir(parents=True, exist_ok=True)
    paths = {"1-text": work / "bodies-1.jsonl", "32-text": work / "bodies-32.jsonl"}
    paths["1-text"].write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in texts))
    chunks = [texts[i : i + 32] for i in range(0, len(texts) - 31, 32)]
    paths["32-text"].write_text("".join(json.dumps({"texts": c}) + "\n" for c in chunks))
    return texts, paths


# --- raw limit ----------------------------------------------------------------------
@dataclass
class RawResult:
    points: dict[str, float] = field(default_factory=dict)  # setting -> texts/s

    @property
    def best_setting(self) -> str:
        return max(self.points, key=self.points.__getitem__)

    @property
    def best_texts_per_s(self) -> float:
        return max(self.points.values())

    @property
    def best_arrival_texts_per_s(self) -> float:
        return max(v for k, v in self.points.items() if "arrival" in k)

    def describe(self) -> str:
        return "\n".join(f"  {k}: {v:.0f} texts/s" for k, v in self.points.items())


def raw_limit(texts: list[str], sample: int = 768) -> RawResult:
    """The model alone on the same texts: plain padded batches and refit's bucketing."""
    import torch

    from training.inference import TextClassifier
    from training.registry import Registry
    from training.settings import get_settings

    settings = get_settings()
    # One process using every core: the most the machine does without a server.
    torch.set_num_threads(settings.torch_threads or os.cpu_count() or 1)
    version = Registry.from_settings(settings).get()
    classifier = TextClassifier.from_folder(
        version.path,
        device=settings.device,
        max_length=int(version.metadata.get("max_length", settings.max_length)),
    )
    classifier.warm_up()
    on_gpu = classifier.device.type == "cuda"
    # A GPU goes through 768 texts in a few hundredths of a second: time them all, and
    # the larger batches a GPU wants.
    subset = texts if on_gpu else texts[:sample]
    sizes = (1, 8, 32, 64, 128, 256, 512) if on_gpu else (1, 8, 32, 64, 128)
    result = RawResult()
    for order in ("arrival", "sorted"):
        for size in sizes:
            # One text at a time is slow: time the first 128 texts, in either order.
            items = subset[:128] if size == 1 else subset
            if order == "sorted":
                items = sorted(items, key=len)
            result.points[f"plain padding, {order}, batch {size}"] = _timed(
                lambda b, s=size: _plain(classifier, b, s), items
            )
    for size in sizes[2:]:
        result.points[f"refit buckets, arrival, batch {size}"] = _timed(
            lambda b, s=size: [classifier.predict(b[i : i + s]) for i in range(0, len(b), s)],
            subset,
        )
    return result


def _plain(classifier: object, texts: list[str], size: int) -> None:
    import torch

    for i in range(0, len(texts), size):
        enc = classifier.tokenizer(  # type: ignore[attr-defined]
            texts[i : i + size],
            truncation=True,
            padding=True,
            max_length=classifier.max_length,
            return_tensors="pt",  # type: ignore[attr-defined]
        ).to(classifier.device)  # type: ignore[attr-defined]
        with torch.inference_mode():
            # .cpu() waits for the GPU, as a server must before it answers
            classifier.model(**enc).logits.softmax(-1).cpu()  # type: ignore[attr-defined]


def _timed(run: object, texts: list[str]) -> float:
    started = time.perf_counter()
    run(texts)  # type: ignore[operator]
    return len(texts) / (time.perf_counter() - started)


# --- a server -----------------------------------------------------------------------
@dataclass
class ServerHandle:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        import psutil

        try:  # BentoML's workers sit in process groups of their own
            tree = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        for proc in tree:
            if proc.is_running():
                proc.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    work: Path, *, batching: bool, extra_env: dict[str, str] | None = None
) -> ServerHandle:
    """`bentoml serve` on a private copy of BENTOML_HOME (metrics folder and log included)."""
    from training.settings import bentoml_home, get_settings

    work.mkdir(parents=True, exist_ok=True)
    home = work / "bentoml"
    shutil.copytree(
        bentoml_home(), home, ignore=shutil.ignore_patterns("prometheus*", "*.sqlite3*")
    )
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "REFIT_ADAPTIVE_BATCHING": str(batching).lower(),
        "REFIT_PREDICTION_LOG_URL": f"sqlite:///{work / 'predictions.sqlite3'}",
        **(extra_env or {}),
    }
    state = get_settings().state_dir
    if state is not None:
        shutil.copytree(state, work / "state", ignore=shutil.ignore_patterns("*.sqlite3*"))
        env["REFIT_STATE_DIR"] = str(work / "state")
    port = _free_port()
    log = work / "server.log"
    bentoml = str(Path(sys.executable).parent / "bentoml")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                bentoml,
                "serve",
                "service.service:Classifier",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = ServerHandle(process, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise TimeoutError(f"server not ready:\n{log.read_text()[-3000:]}")


# --- load -----------------------------------------------------------------------------
@dataclass
class BatchStats:
    batches: float = 0.0
    texts: float = 0.0
    overload: float = 0.0

    def since(self, before: BatchStats) -> BatchStats:
        return BatchStats(
            self.batches - before.batches,
            self.texts - before.texts,
            self.overload - before.overload,
        )


def wait_idle(url: str, timeout: float = 120) -> None:
    """Wait until the server holds no texts: a point must not start on the last one's backlog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        held = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("refit_in_flight_texts")
        )
        if held == 0:
            return
        time.sleep(0.5)


def batch_stats(url: str) -> BatchStats:
    """Batches formed, texts in them and requests refused, from the server's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    stats = BatchStats()
    for line in text.splitlines():
        if line.startswith("refit_batch_items_count"):
            stats.batches += float(line.rsplit(" ", 1)[1])
        elif line.startswith("refit_batch_items_sum"):
            stats.texts += float(line.rsplit(" ", 1)[1])
        elif line.startswith("refit_request_errors_total") and 'reason="overload"' in line:
            stats.overload += float(line.rsplit(" ", 1)[1])
    return stats


@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int  # failures: non-2xx responses other than refusals, socket errors, timeouts
    tag: str = ""
    kind: str = ""
    connections: int = 0
    texts_per_request: int = 1
    batches: float = 0.0
    batched_texts: float = 0.0
    refused: int = 0  # 429 and 503 answers: refused for overload, with Retry-After

    def attach(
        self, tag: str, kind: str, connections: int, stats: BatchStats, texts_per_request: int
    ) -> None:
        self.tag, self.kind, self.connections = tag, kind, connections
        self.texts_per_request = texts_per_request
        self.batches, self.batched_texts = stats.batches, stats.texts

    @property
    def ok_requests(self) -> int:
        return self.requests - self.errors - self.refused

    @property
    def req_per_s(self) -> float:
        return self.ok_requests / self.seconds

    @property
    def texts_per_s(self) -> float:
        return self.req_per_s * self.texts_per_request

    @property
    def mean_batch(self) -> float:
        return self.batched_texts / self.batches if self.batches else float("nan")

    def row(self) -> str:
        return (
            f"| {self.tag} | {self.kind} | {self.connections} | {self.texts_per_s:.0f} | "
            f"{self.req_per_s:.1f} | {self.p50_ms:.0f} | {self.p95_ms:.0f} | "
            f"{self.p99_ms:.0f} | {self.errors} | {self.refused} | "
            f"{self.mean_batch:.1f} |"
        )


def run_wrk(url: str, bodies: Path, *, connections: int, seconds: float) -> LoadResult:
    threads = max(1, min(2, connections))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA),
        f"{url}/classify",
    ]
    done = subprocess.run(
        cmd, env={**os.environ, "BODIES": str(bodies)}, capture_output=True, text=True, check=True
    )
    match = re.search(r"^\{.*\}$", done.stdout, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    raw = json.loads(match.group(0))
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=raw["status_errors"] - raw["refused"] + socket_errors + raw["timeouts"],
        refused=raw["refused"],
    )
