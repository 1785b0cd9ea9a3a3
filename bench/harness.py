"""Pieces shared by the serving benchmarks: bodies, a server, wrk and its results."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from server_metrics import PointMetrics, wait_idle

# The integration tests' server harness: free port, private home, stop by process tree.
from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

HERE = Path(__file__).resolve().parent
LUA = HERE / "classify.lua"

__all__ = ["RunningServer", "wait_idle"]

# REFIT_BATCHING: refit's scheduler (the default), BentoML's adaptive batching, none.
MODES = ("scheduler", "bentoml", "off")


# --- request bodies -----------------------------------------------------------------
def request_bodies(work: Path, n: int) -> tuple[list[str], dict[str, Path]]:
    """Texts of realistic, mixed length, and JSON bodies of 1 and 32 texts."""
    from refit import datagen

    texts = datagen.generate(n, seed=20261127)["text"].tolist()
    work.mkdir(parents=True, exist_ok=True)
    paths = {"1-text": work / "bodies-1.jsonl", "32-text": work / "bodies-32.jsonl"}
    paths["1-text"].write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in texts))
    paths["32-text"].write_text("".join(json.dumps({"texts": c}) + "\n" for c in chunks(texts)))
    return texts, paths


def chunks(texts: list[str], size: int = 32) -> list[list[str]]:
    """The texts of the 32-text bodies, in order (a short tail is left out)."""
    return [texts[i : i + size] for i in range(0, len(texts) - size + 1, size)]


# --- a server -----------------------------------------------------------------------
def batching_env(batching: bool | str, *, legacy: bool = False) -> dict[str, str]:
    """The environment that selects a serving path.

    A mode name sets REFIT_BATCHING; `legacy` also sets REFIT_ADAPTIVE_BATCHING, which
    the service read before REFIT_BATCHING existed. A bool (older callers) sets
    REFIT_ADAPTIVE_BATCHING, and False also REFIT_BATCHING=off; True leaves the mode
    to the service's default.
    """
    if isinstance(batching, bool):
        env = {"REFIT_ADAPTIVE_BATCHING": str(batching).lower()}
        return env if batching else {**env, "REFIT_BATCHING": "off"}
    if batching not in MODES:
        raise ValueError(f"unknown batching mode {batching!r}; one of {', '.join(MODES)}")
    env = {"REFIT_BATCHING": batching}
    if legacy:
        env["REFIT_ADAPTIVE_BATCHING"] = str(batching != "off").lower()
    return env


def start_server(
    work: Path,
    *,
    batching: bool | str,
    extra_env: dict[str, str] | None = None,
    home: Path | None = None,
    legacy: bool = False,
    workers: int | None = None,
) -> RunningServer:
    """`bentoml serve` of the champion, on private copies of BENTOML_HOME and the state.

    `batching`: a REFIT_BATCHING mode (see `batching_env`). `home`: serve that
    BENTOML_HOME's champion (its state in `home/refit`) instead of the current one's.
    `workers`: REFIT_WORKERS (default: this process's setting, one per core up to 4).
    """
    from refit.core.settings import bentoml_home
    from refit.service.settings import get_settings

    settings = get_settings()
    env = {
        "BENTOML_HOME": str(home or bentoml_home()),
        "REFIT_WORKERS": str(workers or settings.serving.resolved_workers()),
        "REFIT_PREDICTION_LOG_URL": f"sqlite:///{work / 'predictions.sqlite3'}",
        **batching_env(batching, legacy=legacy),
        **(extra_env or {}),
    }
    if home is not None:
        # That home's champion pointer, not one a REFIT_STATE_DIR of this process names.
        env["REFIT_STATE_DIR"] = str(home / "refit")
    elif settings.core.state_dir is not None:
        env["REFIT_STATE_DIR"] = str(settings.core.state_dir)
    work.mkdir(parents=True, exist_ok=True)
    return start_bentoml(env, work, timeout=180)


# --- load -----------------------------------------------------------------------------
@dataclass
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int  # failures: non-2xx answers other than 429/503, socket errors, timeouts
    tag: str = ""
    kind: str = ""
    connections: int = 0
    texts_per_request: int = 1
    refused: int = 0  # 429 and 503 answers
    ok: int = -1  # 2xx answers (-1: the script did not count them)
    status_429: int = 0
    status_503: int = 0
    status_5xx: int = 0  # 5xx other than 503
    no_retry_after: int = 0  # 429s and 503s that came without Retry-After
    accepted_p99_lo_ms: float = float("nan")  # bounds on the 2xx answers' p99 (classify.lua)
    accepted_p99_hi_ms: float = float("nan")
    polite: bool = True  # the client waited for Retry-After after a refusal
    # CPU seconds by part: "wrk" (the load's own cost to this machine), and the process
    # trees a `cpu_meter` read over the load ("server", "haproxy")
    cpu_s: dict[str, float] = field(default_factory=dict)
    server: PointMetrics = field(default_factory=PointMetrics)

    def attach(
        self, tag: str, kind: str, connections: int, server: PointMetrics, texts_per_request: int
    ) -> None:
        self.tag, self.kind, self.connections = tag, kind, connections
        self.texts_per_request, self.server = texts_per_request, server

    @property
    def ok_requests(self) -> int:
        if self.ok >= 0:
            return self.ok
        return self.requests - self.errors - self.refused

    @property
    def req_per_s(self) -> float:
        return self.ok_requests / self.seconds if self.seconds > 0 else float("nan")

    @property
    def texts_per_s(self) -> float:
        """Goodput: texts in successful answers per second."""
        return self.req_per_s * self.texts_per_request

    @property
    def mean_batch(self) -> float:
        return self.server.mean_batch

    def row(self) -> str:
        return (
            f"| {self.tag} | {self.kind} | {self.connections} | {self.texts_per_s:.0f} | "
            f"{self.req_per_s:.1f} | {self.p50_ms:.0f} | {self.p95_ms:.0f} | "
            f"{self.p99_ms:.0f} | {self.errors} | {self.refused} | "
            f"{self.server.mean_batch:.1f} | {self.server.padding_efficiency:.2f} |"
        )


def parse_wrk(stdout: str) -> LoadResult:
    """The LoadResult in the JSON line classify.lua's done() prints."""
    match = re.search(r"^\{.*\}$", stdout, re.M)
    if match is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}")
    raw = json.loads(match.group(0))
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"]
    status_errors = raw["status_errors"]  # wrk: answers with status > 399
    if "ok" in raw:  # counted by status in classify.lua
        status_errors = raw["status_5xx"] + raw["status_other"]
    else:
        status_errors -= raw["refused"]
    return LoadResult(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=status_errors + socket_errors + raw["timeouts"],
        refused=raw["refused"],
        ok=raw.get("ok", -1),
        status_429=raw.get("status_429", 0),
        status_503=raw.get("status_503", 0),
        status_5xx=raw.get("status_5xx", 0),
        no_retry_after=raw.get("no_retry_after", 0),
        accepted_p99_lo_ms=raw.get("accepted_p99_lo_us", float("nan")) / 1000,
        accepted_p99_hi_ms=raw.get("accepted_p99_hi_us", float("nan")) / 1000,
        polite=raw.get("polite", True),
    )


def run_wrk(
    url: str, bodies: Path, *, connections: int, seconds: float, polite: bool = True
) -> LoadResult:
    """wrk against /classify for `seconds` (bounded: killed 60 s past that)."""
    threads = max(1, min(2, connections))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA),
        f"{url}/classify",
    ]
    env = {**os.environ, "BODIES": str(bodies), "IGNORE_RETRY_AFTER": "0" if polite else "1"}
    before = _children_cpu_s()
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    try:
        result = parse_wrk(done.stdout)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{done.stderr}") from None
    result.cpu_s["wrk"] = _children_cpu_s() - before  # wrk is the only child waited for
    return result


def _children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
