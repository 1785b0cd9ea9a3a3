"""Evidently's page as refit renders it: data escaped for a script element, scripts by hash."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift

from refit.monitoring.drift.report_html import (
    evidently_page,
    page_policy,
    script_json,
    script_policy,
)

HOSTILE = "</script><script>document.title='XSS'</script>\u2028<!-- & -->"


def test_script_json_escapes_what_could_end_or_bend_a_script() -> None:
    value = {"text": HOSTILE, "n": [1.5, float("nan")], HOSTILE: True}
    text = script_json(value)
    assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
    decoded = json.loads(text.replace("NaN", "null"))
    assert decoded["text"] == HOSTILE
    assert decoded[HOSTILE] is True


def test_script_policy_lists_each_inline_script_by_hash() -> None:
    page = "<html><head><script>var a = 1;</script></head><body><script>go()</script></body>"
    policy = script_policy(page)
    for body in ("var a = 1;", "go()"):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "script-src 'none'" in script_policy("<p>no script</p>")


@pytest.fixture(scope="module")
def page() -> str:
    texts = [f"{HOSTILE} {i}" for i in range(30)]
    current = pd.DataFrame({"text": texts})
    reference = pd.DataFrame({"text": [f"an ordinary message {i}" for i in range(30)]})
    definition = DataDefinition(text_columns=["text"])
    report = Report([ValueDrift(column="text")])
    snapshot = report.run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    return evidently_page(snapshot)


def test_a_report_page_holds_no_raw_logged_markup(page: str) -> None:
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 4  # data, global, Evidently's library, the call that draws
    assert "document.title='XSS'" in page  # the text is there, escaped
    assert "\\u003c/script\\u003e\\u003cscript\\u003edocument.title" in page
    assert page.count("</script>") == len(scripts)


def test_a_report_page_declares_its_policy_first_in_its_head(page: str) -> None:
    head = page[: page.index("<script>")]
    policy = page_policy(head)
    assert policy is not None
    assert policy == script_policy(page)
    assert page_policy("<head><title>old report</title></head>") is None
