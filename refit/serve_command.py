"""`refit serve`: run the BentoML service on the champion."""

from __future__ import annotations

import os
import socket
import sys
import time
from typing import Annotated

import typer
from rich.markup import escape

from refit.console import console, err, settings_from_env
from refit.core.errors import ConfigError, PredictionLogUnavailable
from refit.monitoring.log_check import check_log
from refit.service.model.parent_watch import SERVER_PID_VAR
from refit.service.settings import Settings
from refit.training_commands import train_default

SERVICE = "refit.service.service:Classifier"


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be bound now, or None when it can (the probe is closed).

    The probe binds as the server will, with SO_REUSEADDR: on Linux that still fails
    on a port another socket listens on, but not on one a just-stopped server left in
    TIME_WAIT, which the server itself can reuse.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve the host: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return (exc.strerror or str(exc)).lower()
    return None


# Workers of a server that was just killed exit within a second (service/model/parent_watch.py);
# a restart waits this long for them to let go of the port before calling it busy.
PORT_RELEASE_S = 5.0


def require_free_port(host: str, port: int, wait_s: float = PORT_RELEASE_S) -> None:
    """End the command with one line naming host:port when it cannot be bound."""
    deadline = time.monotonic() + wait_s
    problem = port_problem(host, port)
    while problem is not None and "in use" in problem and time.monotonic() < deadline:
        time.sleep(0.25)
        problem = port_problem(host, port)
    if problem is None:
        return
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    hint = "; is another server running there? choose --port or REFIT_PORT"
    err.print(
        f"[red]error:[/red] cannot serve on {where}: {problem}"
        + (hint if "in use" in problem else ""),
        soft_wrap=True,
        highlight=False,
    )
    raise typer.Exit(1)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    train_if_missing: Annotated[
        bool,
        typer.Option(
            "--train-if-missing", help="Train the default model first if none is registered."
        ),
    ] = False,
) -> None:
    """Serve the champion over HTTP with adaptive batching (BentoML)."""
    from refit.core.registry import Registry

    settings = settings_from_env(host=host, port=port, workers=workers)
    require_free_port(settings.serving.host, settings.serving.port)
    require_usable_log(settings)
    if Registry.from_settings(settings.core).champion_tag() is None:
        if not train_if_missing:
            err.print(
                "[red]no champion model yet:[/red] run `refit train` or add --train-if-missing"
            )
            raise typer.Exit(1)
        console.print("no model registered yet: training the default model first")
        train_default(settings)
        # Training takes minutes: the port may have been taken meanwhile.
        require_free_port(settings.serving.host, settings.serving.port)
    _exec_bentoml(settings)


def require_usable_log(settings: Settings) -> None:
    """End the command with one line when the prediction log cannot work: status 2 for
    REFIT_PREDICTION_LOG_URL (a setting, as every invalid setting), 1 for a damaged
    SQLite file. Checked here once, before BentoML starts any worker, with the depth of
    REFIT_LOG_START_CHECK; a database that is only unreachable now passes."""
    if not settings.monitoring.enabled:
        return
    url = settings.monitoring.resolved_log_url(settings.core)
    try:
        check_log(url, settings.monitoring.log_start_check)
    except (ConfigError, PredictionLogUnavailable) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from exc


def _exec_bentoml(settings: Settings) -> None:
    # The server reads its settings from the environment in its own processes.
    env = {
        **os.environ,
        "REFIT_HOST": settings.serving.host,
        "REFIT_PORT": str(settings.serving.port),
    }
    env["REFIT_WORKERS"] = str(settings.serving.resolved_workers())
    # After the exec this process is BentoML's arbiter: its workers watch this pid.
    env[SERVER_PID_VAR] = str(os.getpid())
    # BentoML's command line, in a process that exits non-zero when a worker stopped
    # the server because it cannot serve (refit/serve_process.py).
    args = [sys.executable, "-m", "refit.serve_process", "serve", SERVICE]
    args += ["--host", settings.serving.host, "--port", str(settings.serving.port)]
    console.print(
        f"starting on http://{settings.serving.host}:{settings.serving.port}; a line "
        "says when it is ready"
    )
    os.execvpe(args[0], args, env)
