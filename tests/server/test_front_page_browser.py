"""The front page and /docs of a real server, as headless Chromium renders them.

Assertions read the rendered DOM (`--dump-dom` after the page's scripts ran), not
the HTML the server sent, and Chromium's network log shows every request a page
made. Screenshots go to a temporary folder, removed afterwards; set
FRONT_PAGE_SCREENSHOT_DIR to keep a copy of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from drift_summaries import write_embedding_drift

from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason="Debian's chromium is not installed (`apt-get install -y --no-install-recommends "
    "chromium`; .ci/run installs it)",
)
REASON = "drift in 2 consecutive checks: embedding"


@pytest.fixture(scope="module")
def server(served_env: dict[str, str], scratch: Path) -> Iterator[RunningServer]:
    running = start_bentoml(served_env, scratch / "server")
    yield running
    running.stop()


def write_drift_check(state_dir: Path, version: str) -> str:
    """A check that found drift in the embeddings, with its report; the report's name."""
    result = write_embedding_drift(
        state_dir, ago=timedelta(minutes=2), rows=512, version=version, estimated_margin=0.021
    )
    assert result.html_path is not None
    result.html_path.write_text("<!DOCTYPE html><title>report</title><p>drift report</p>")
    return result.html_path.name


def write_audit_record(state_dir: Path) -> None:
    import pandas as pd

    from refit.core.settings import CoreSettings
    from refit.retraining.audit import AuditLog
    from refit.retraining.shadow import compare

    audit = AuditLog(CoreSettings(state_dir=state_dir))
    audit.append("decision", action="retrain", reasons=[REASON], check={"status": "drift"})
    replayed = pd.DataFrame(
        {
            "text": ["please delete all my personal data", "where is my parcel??", "refund me"],
            "champion_label": ["account_access", "shipping", "refund"],
            "champion_score": [0.93, 0.97, 0.95],
            "challenger_label": ["data_privacy", "shipping", "refund"],
            "challenger_score": [0.88, 0.96, 0.94],
            "true_label": ["data_privacy", None, None],
            "unseen": [True, True, True],
        }
    )
    shadow = compare(replayed, confident_score=0.9).to_dict()
    audit.append(
        "retrain",
        reason="drift",
        promoted=True,
        decision={"reasons": ["all rules pass"]},
        shadow=shadow,
    )


def chromium(url: str, workdir: Path, *extra: str) -> str:
    """Run headless Chromium on `url` with a fresh profile; its stdout."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={workdir / 'profile'}",
        f"--log-net-log={workdir / 'netlog.json'}",
        "--virtual-time-budget=8000",
        *extra,
        url,
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def render(url: str, workdir: Path, screenshot: Path) -> tuple[str, set[str]]:
    """The rendered DOM of `url`, and the hosts the page itself sent requests to."""
    chromium(url, workdir / "shot", f"--screenshot={screenshot}", "--window-size=1280,2000")
    assert screenshot.stat().st_size > 10_000
    dom = chromium(url, workdir / "dom", "--dump-dom")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    return dom, hosts_requested_by(origin, workdir / "dom" / "netlog.json")


def hosts_requested_by(origin: str, netlog: Path) -> set[str]:
    """The hosts of every request a page of `origin` made, from Chromium's net log.

    The browser's own background requests (Google's update and account services,
    which this machine's network refuses) have no page as initiator and are left out.
    """
    text = netlog.read_text().rstrip()
    if not text.endswith("}"):  # a log cut at exit lacks its closing brackets
        text = text.rstrip(",") + "]}"
    log = json.loads(text)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    hosts = set()
    for event in log.get("events", []):
        params = event.get("params") or {}
        if event.get("type") == start_job and params.get("initiator") == origin:
            hosts.add(urlsplit(params["url"]).netloc)
    return hosts


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def keep(screenshots: Path) -> None:
    target = os.environ.get("FRONT_PAGE_SCREENSHOT_DIR")
    if target:
        shutil.copytree(screenshots, target, dirs_exist_ok=True)


@needs_chromium
def test_the_front_page_shows_what_the_person_on_call_needs(
    server: RunningServer, scratch: Path
) -> None:
    texts = ["I was charged twice this month", "where is my parcel??", "cant log in"]
    answers = [httpx.post(f"{server.url}/classify", json={"texts": texts}) for _ in range(12)]
    assert {a.status_code for a in answers} == {200}
    version = answers[0].json()[0]["model_version"]
    state_dir = server.home.parent / "state"
    report = write_drift_check(state_dir, version)
    write_audit_record(state_dir)

    shots = scratch / "screenshots"
    shots.mkdir(exist_ok=True)
    dom, hosts = render(f"{server.url}/", scratch / "front", shots / "front-page.png")
    keep(shots)
    text = visible_text(dom)
    assert f"serving {version}" in text
    rate = re.search(r"predictions/s ([0-9.]+)", text)
    assert rate is not None, text
    assert float(rate.group(1)) > 0, text
    assert "· drift" in text
    assert "embedding" in text
    assert REASON in text
    assert "estimated accuracy 0.810 ± 0.021" in text
    assert "confident predictions that would change: 1 of 3" in text
    assert hosts <= {urlsplit(server.url).netloc}, hosts
    assert httpx.get(f"{server.url}/reports/{report}").status_code == 200
    status = httpx.get(f"{server.url}/status.json").json()
    assert status["served"]["version"] == version
    assert status["live"]["requests"] >= 12


@needs_chromium
def test_docs_render_the_api_from_local_files_only(server: RunningServer, scratch: Path) -> None:
    shots = scratch / "screenshots"
    shots.mkdir(exist_ok=True)
    dom, hosts = render(f"{server.url}/docs", scratch / "docs", shots / "docs-page.png")
    keep(shots)
    text = visible_text(dom)
    assert "/classify" in text, text[:2000]
    assert "refit" in text
    assert hosts == {urlsplit(server.url).netloc}, hosts  # its own files, nothing else
    # Namespace names of inline SVG icons are URLs nothing fetches.
    links = re.sub(r'xmlns(?::\w+)?="[^"]*"', "", dom)
    external = re.findall(r"(?:https?:)?//(?!127\.0\.0\.1[:/])[\w.-]+\.[a-z]{2,}", links)
    assert external == [], external
    assert "googletagmanager" not in dom
