"""Pieces shared by the serving benchmarks: bodies, wrk, a server, the raw limit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
LUA = HERE / "classify.lua"
# The integration tests' server harness: free port, private home, stop by process tree.
sys.path.insert(0, str(HERE.parent / "tests"))

from servers import RunningServer, start_bentoml  # noqa: E402


# --- request bodies -----------------------------------------------------------------
def request_bodies(work: Path, n: int) -> tuple[list[str], dict[str, Path]]:
    """Texts of realistic, mixed length, and JSON bodies of 1 and 32 texts."""
    import datagen

    texts = datagen.generate(n, seed=20261127)["text"].tolist()
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

    from core.inference import TextClassifier
    from core.registry import Registry
    from service.settings import get_settings

    settings = get_settings()
    # One process using every core: the most the machine does without a server.
    torch.set_num_threads(settings.serving.torch_threads or os.cpu_count() or 1)
    version = Registry.from_settings(settings.core).get()
    classifier = TextClassifier.from_folder(
        version.path,
        device=settings.core.device,
        max_length=version.max_length(settings.training.max_length),
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
def start_server(
    work: Path, *, batching: bool, extra_env: dict[str, str] | None = None
) -> RunningServer:
    """`bentoml serve` of the champion, on private copies of BENTOML_HOME and the state."""
    from core.settings import bentoml_home
    from service.settings import get_settings

    settings = get_settings()
    env = {
        "BENTOML_HOME": str(bentoml_home()),
        "REFIT_WORKERS": str(settings.serving.resolved_workers()),
        "REFIT_ADAPTIVE_BATCHING": str(batching).lower(),
        "REFIT_PREDICTION_LOG_URL": f"sqlite:///{work / 'predictions.sqlite3'}",
        **(extra_env or {}),
    }
    if settings.core.state_dir is not None:
        env["REFIT_STATE_DIR"] = str(settings.core.state_dir)
    work.mkdir(parents=True, exist_ok=True)
    return start_bentoml(env, work, timeout=180)


# --- load -----------------------------------------------------------------------------
@dataclass
class BatchStats:
    batches: float = 0.0
    texts: float = 0.0

    def since(self, before: BatchStats) -> BatchStats:
        return BatchStats(self.batches - before.batches, self.texts - before.texts)


def _metric_sums(url: str, *names: str) -> list[float]:
    """For each of `names`, the sum of its samples (all label sets) on one /metrics read."""
    lines = httpx.get(f"{url}/metrics", timeout=10).text.splitlines()
    return [
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith((f"{name} ", f"{name}{{"))
        )
        for name in names
    ]


def wait_idle(url: str, timeout: float = 120) -> None:
    """Wait until the server holds no texts: a point must not start on the last one's backlog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _metric_sums(url, "refit_in_flight_texts")[0] > 0:
        time.sleep(0.5)


def batch_stats(url: str) -> BatchStats:
    """Batches formed and the texts in them, from the server's /metrics."""
    batches, texts = _metric_sums(url, "refit_batch_items_count", "refit_batch_items_sum")
    return BatchStats(batches, texts)


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
