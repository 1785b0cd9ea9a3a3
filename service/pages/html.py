"""The front page as HTML: one self-contained document, no script, no external resource.

Everything shown that came from a file, the registry or a user (versions, labels,
reasons, signal names) goes through `_e`, and links are built only from names the
file guards accept. The page refreshes itself every 30 s with a meta tag, so it
needs no JavaScript, and works offline.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from refit.service.pages.data import AuditRow, DriftView, PageData, ReportRun, ServedInfo
from refit.service.pages.live_rates import LiveRates

REFRESH_S = 30
VERDICTS = {
    "ok": ("ok", "no drift"),
    "drift": ("drift", "drift"),
    "not_enough_data": ("nodata", "not enough data"),
}
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232b;
background:#f5f6f8}
header{padding:16px 28px;color:#fff;background:#59606b}
header.ok{background:#1e7b47}header.drift{background:#b3261e}header.nodata{background:#8a6d00}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0}header a{color:#fff}
main{padding:8px 28px 28px;max-width:1100px}
section{background:#fff;border:1px solid #d8dce2;border-radius:6px;margin:16px 0;
padding:4px 18px 12px}
h2{font-size:17px;margin:12px 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #e6e8ec;vertical-align:top}
th{width:230px;color:#4a5260;font-weight:600}
thead th{width:auto}
td.num{font-variant-numeric:tabular-nums}
.bad{color:#b3261e;font-weight:600}.muted{color:#68707c}
ul{margin:0;padding-left:18px}
footer{color:#68707c;font-size:13px;padding:0 28px 20px}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _ago(iso: str | None, now: datetime) -> str:
    """`2026-11-30 10:15:00 UTC (12 min ago)`, or the text as given if it is no time."""
    if not iso:
        return "unknown"
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return _e(iso)
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    seconds = max((now - when).total_seconds(), 0)
    units = [(86400, "d"), (3600, "h"), (60, "min")]
    age = next((f"{int(seconds // n)} {u} ago" for n, u in units if seconds >= n), "just now")
    shown = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'{_e(shown)} <span class="muted">({age})</span>'


def _num(value: float | None, fmt: str = "{:.3f}", missing: str = "n/a") -> str:
    return missing if value is None else _e(fmt.format(value))


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _usd(value: float | None) -> str:
    """Dollars with enough decimals to show a small cost ($0.000021, not $0.0000)."""
    if value is None:
        return "n/a"
    return f"${value:.4f}" if value >= 0.01 or value == 0 else f"${value:.6f}"


def _share(rate: float | None, parts: dict[str, int]) -> str:
    if rate is None:
        return "n/a"
    detail = ", ".join(f"{_e(k)}: {v}" for k, v in sorted(parts.items()))
    return f"{rate:.1%}" + (f' <span class="muted">({detail})</span>' if detail else "")


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """Table rows from (label, already escaped HTML) pairs."""
    body = "".join(f"<tr><th>{_e(name)}</th><td class=num>{cell}</td></tr>" for name, cell in pairs)
    return f"<table>{body}</table>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def served_section(served: ServedInfo | None, now: datetime) -> str:
    if served is None:
        return _section("Served model", "<p>The model is still loading.</p>")
    version = _e(served.version)
    if served.card_url:
        version = f'<a href="{_e(served.card_url)}">{version}</a> (model card)'
    since = _ago(served.champion_since, now) if served.champion_since else "never promoted"
    if not served.champion_now:
        since += ' <span class="bad">(not the current champion)</span>'
    return _section(
        "Served model",
        _rows(
            [
                ("version", version),
                ("backend", _e(served.backend or "-")),
                ("test macro-F1", _num(served.test_macro_f1)),
                ("champion since", since),
            ]
        ),
    )


def live_section(live: LiveRates | None) -> str:
    if live is None or not live.traffic:
        return _section("Last minute", "<p>No traffic in the last minute.</p>")
    rows = [
        ("requests/s", f"{live.requests_per_s:.2f}"),
        ("predictions/s", f"{live.predictions_per_s:.2f}"),
        ("latency p50", _ms(live.p50_s)),
        ("latency p99", _ms(live.p99_s)),
        ("error rate", _share(live.error_rate, live.errors_by_reason)),
        ("refusal rate", _share(live.refusal_rate, live.refusals_by_cause)),
        ("cost per 1k predictions", _usd(live.cost_per_1k_usd)),
    ]
    over = f"/classify, over the last {live.window_s:.0f} s ({live.requests} requests)"
    note = f'<p class="muted">{over}.</p>'
    return _section("Last minute", _rows(rows) + note)


def _signals_table(drift: DriftView) -> str:
    if not drift.drifted:
        return f"<p>No signal over its threshold ({drift.signals_checked} checked).</p>"
    head = "<thead><tr><th>drifted signal</th><th>value</th><th>threshold</th></tr></thead>"
    body = "".join(
        f"<tr><td class=bad>{_e(s.name)}</td><td class=num>{_num(s.value, '{:.4g}')}</td>"
        f"<td class=num>{_num(s.threshold, '{:.4g}')}</td></tr>"
        for s in drift.drifted
    )
    return f"<table>{head}<tbody>{body}</tbody></table>"


def _reports_list(reports: list[ReportRun]) -> str:
    if not reports:
        return "<p>No reports yet.</p>"
    items = []
    for run in reports:
        links = [
            f'<a href="/reports/{_e(quote(name))}">{kind}</a>'
            for name, kind in ((run.html, "HTML report"), (run.json, "JSON summary"))
            if name
        ]
        items.append(f"<li>{_e(run.stem)}: {' · '.join(links)}</li>")
    return f"<h2>Recent reports</h2><ul>{''.join(items)}</ul>"


def drift_section(drift: DriftView | None, reports: list[ReportRun], now: datetime) -> str:
    if drift is None:
        return _section("Drift", "<p>No drift check yet.</p>" + _reports_list(reports))
    verdict = VERDICTS.get(drift.status, ("", drift.status))[1]
    css = "bad" if drift.status == "drift" else ""
    size = "" if drift.window_size is None else f", {drift.window_size} predictions"
    rows = [
        ("verdict", f'<span class="{css}">{_e(verdict)}</span>'),
        ("checked at", _ago(drift.checked_at, now)),
        ("model version", _e(drift.model_version)),
        ("window", _e(drift.window) + _e(size)),
        ("estimated accuracy", _estimate(drift)),
        ("actual accuracy", _num(drift.actual_accuracy, missing="no feedback in the window")),
    ]
    message = f"<p>{_e(drift.message)}</p>" if drift.message else ""
    body = _rows(rows) + message + _embedding_line(drift) + _signals_table(drift)
    return _section("Drift", body + _reports_list(reports))


def _embedding_line(drift: DriftView) -> str:
    """What the embedding signal compares and how, and its score against its threshold:
    the signal that says the model sees texts unlike its training data."""
    signal = drift.embedding
    if signal is None:
        return ""
    about = _e(signal.about or f"method {signal.method}")
    if signal.score is None:
        verdict = "not computed"
    else:
        side = "above" if signal.drifted else "not above"
        limit = _num(signal.score_threshold, "{:.2f}")
        verdict = f"score {_num(signal.score, '{:.2f}')}, {side} its threshold {limit}"
    return f'<p class="muted">Embedding signal ({about}): {verdict}.</p>'


def _estimate(drift: DriftView) -> str:
    text, why = drift.estimate_words()
    return _e(text) + (f' <span class="bad">({_e(why)})</span>' if why else "")


def _shadow(lines: list[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f"<details open><summary>shadow replay</summary><ul>{items}</ul></details>"


def retraining_section(rows: list[AuditRow], now: datetime) -> str:
    if not rows:
        return _section("Retraining decisions", "<p>No retraining decision yet.</p>")
    head = "<thead><tr><th>time</th><th>event</th><th>outcome</th><th>reasons</th></tr></thead>"
    body = "".join(
        f"<tr><td>{_ago(r.time, now)}</td><td>{_e(r.event)}</td><td>{_e(r.outcome)}</td>"
        f"<td><ul>{''.join(f'<li>{_e(x)}</li>' for x in r.reasons)}</ul>"
        f"{_shadow(r.shadow)}</td></tr>"
        for r in rows
    )
    return _section("Retraining decisions", f"<table>{head}<tbody>{body}</tbody></table>")


def _header(data: PageData) -> str:
    status = data.drift.status if data.drift else None
    css, verdict = VERDICTS.get(status or "", ("", "no drift check yet"))
    served = _e(data.served.version) if data.served else "loading"
    return (
        f'<header class="{css}"><h1>refit: serving {served} · {_e(verdict)}</h1>'
        '<p><a href="/docs">API docs (Swagger UI, OpenAPI spec)</a> · '
        '<a href="/status.json">status.json</a> · <a href="/metrics">metrics</a></p></header>'
    )


def render(data: PageData) -> str:
    """The whole front page."""
    now = data.generated_at
    body = "".join(
        [
            served_section(data.served, now),
            live_section(data.live),
            drift_section(data.drift, data.reports, now),
            retraining_section(data.retraining, now),
        ]
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_S}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>refit</title><style>{_CSS}</style></head>'
        f"<body>{_header(data)}<main>{body}</main>"
        f"<footer>Generated {_ago(data.generated_at.isoformat(), now)}; "
        f"refreshes every {REFRESH_S} s.</footer></body></html>"
    )
