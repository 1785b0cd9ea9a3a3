"""Hostile text and hostile tokens against a real server, as an attacker would send them.

Texts that try to run script are classified, logged, checked for drift and shown in the
retraining history; every page and report that can show them is then rendered in
headless Chromium, through the server and (the report) as a file opened directly. A
script that ran would change the document's title or add an element; neither may
happen. The server's tokens are not Latin-1, the case where a lossy decoding once let
`Bearer ??????` through.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_front_page_browser import chromium, needs_chromium

from refit.testing.bentoml_server import start_bentoml
from refit.testing.processes import RunningServer

pytestmark = pytest.mark.integration

ADMIN_TOKEN = "пароль-администратора"
FEEDBACK_TOKEN = "ключ"
PAYLOADS = (
    "</script><script>document.title='XSS1'</script>",
    "<img src=x id=xss2 onerror=\"document.title='XSS2'\">",
    "<svg id=xss3 onload=\"document.title='XSS3'\"></svg>",
    "\u2028</SCRIPT ><script>document.title='XSS4'</script>",
    '"-->]]><iframe id=xss5 srcdoc="<script>parent.document.title=\'XSS5\'</script>"></iframe>',
    "</title><script id=xss6>document.title='XSS6'</script>",
)
ORDINARY = ("I was charged twice this month", "where is my parcel??", "cant log in at all")


@pytest.fixture(scope="module")
def server(served_env: dict[str, str], scratch: Path) -> Iterator[RunningServer]:
    env = {
        **served_env,
        "REFIT_ADMIN_TOKEN": ADMIN_TOKEN,
        "REFIT_FEEDBACK_TOKEN": FEEDBACK_TOKEN,
        "REFIT_ACCESS_LOG": "false",
    }
    running = start_bentoml(env, scratch / "server")
    yield running
    running.stop()


def _bearer(token: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + token), (b"content-type", b"application/json")]


@pytest.mark.parametrize("path", ["/admin/reload", "/feedback"])
def test_only_the_exact_utf8_token_passes(server: RunningServer, path: str) -> None:
    token = ADMIN_TOKEN if path.startswith("/admin") else FEEDBACK_TOKEN
    body = b"{}" if path.startswith("/admin") else b'{"items": [{"id": "x", "label": "a"}]}'
    forged = (
        b"?" * len(token),
        token.encode("latin-1", "replace"),
        token.encode("utf-8")[:-1],
        token.encode("utf-8") + b"?",
    )
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for raw in forged:
            answer = client.post(path, content=body, headers=_bearer(raw))
            assert answer.status_code == 403, (raw, answer.text)
        answer = client.post(path, content=body, headers=_bearer(token.encode("utf-8")))
        assert answer.status_code == 200, answer.text


def _classify_hostile_traffic(server: RunningServer) -> str:
    texts = [*PAYLOADS, *ORDINARY]
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for round_ in range(40):  # 360 predictions: past the drift check's 200
            batch = [f"{text} {round_}" for text in texts]
            answer = client.post("/classify", json={"texts": batch})
            assert answer.status_code == 200, answer.text
    return str(answer.json()[0]["model_version"])


def _write_hostile_history(state_dir: Path) -> None:
    import pandas as pd

    from refit.core.settings import CoreSettings
    from refit.retraining.audit import AuditLog
    from refit.retraining.shadow import compare

    audit = AuditLog(CoreSettings(state_dir=state_dir))
    audit.append("decision", action="retrain", reasons=[PAYLOADS[1]], check={"status": "drift"})
    replayed = pd.DataFrame(
        {
            "text": list(PAYLOADS),
            "champion_label": ["billing"] * len(PAYLOADS),
            "champion_score": [0.95] * len(PAYLOADS),
            "challenger_label": ["shipping"] * len(PAYLOADS),
            "challenger_score": [0.94] * len(PAYLOADS),
            "true_label": [None] * len(PAYLOADS),
            "unseen": [True] * len(PAYLOADS),
        }
    )
    audit.append(
        "retrain",
        reason=PAYLOADS[0],
        promoted=False,
        decision={"reasons": [PAYLOADS[2]]},
        shadow=compare(replayed, confident_score=0.9).to_dict(),
    )


def _run_drift_check(server: RunningServer, state_dir: Path) -> Path:
    env = {
        **os.environ,
        "BENTOML_HOME": str(server.home),
        "REFIT_STATE_DIR": str(state_dir),
        "REFIT_MODEL_NAME": "served-classifier",
    }
    refit = Path(sys.executable).parent / "refit"
    done = subprocess.run(
        [refit, "drift", "--window", "1h", "--json"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["html_path"], summary
    return Path(summary["html_path"])


def _title_and_injected(dom: str) -> tuple[str, list[str]]:
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    # An element a payload made carries its id; as text, its `<` is `&lt;` in the DOM.
    injected = re.findall(r"<[a-z]+\b[^>]*\bid=\"?xss\d", dom, re.I)
    return (title.group(1) if title else ""), injected


@needs_chromium
def test_hostile_logged_text_stays_text_in_every_page(server: RunningServer, scratch: Path) -> None:
    _classify_hostile_traffic(server)
    state_dir = server.home.parent / "state"
    report = _run_drift_check(server, state_dir)
    _write_hostile_history(state_dir)
    raw = report.read_text()
    assert "</script><script>document.title" not in raw
    pages = {
        "front page": f"{server.url}/",
        "docs": f"{server.url}/docs",
        "report, served": f"{server.url}/reports/{report.name}",
        "report, opened as a file": report.as_uri(),
    }
    for name, url in pages.items():
        dom = chromium(url, scratch / re.sub(r"\W+", "-", name), "--dump-dom")
        title, injected = _title_and_injected(dom)
        assert "XSS" not in title, (name, title)
        assert injected == [], (name, injected)
        if name.startswith("report"):
            # Evidently's own scripts still ran under the page's policy: its charts drew.
            assert "Drift in column" in dom, name
