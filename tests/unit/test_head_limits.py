"""Request heads bounded as they arrive (`core/compat/uvicorn.py`, issue 25 case 3): the
patched httptools protocol is fed bytes through a stand-in transport, as the event loop
would feed it from a socket."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from refit.core.compat import uvicorn as compat_uvicorn
from refit.core.compat.uvicorn import HeadLimits, HttpToolsProtocol, install_head_limits

LIMITS = HeadLimits(
    deadline_s=10, url_bytes=1024, header_bytes=1024, header_count=10, head_bytes=4096
)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.protocol: Any = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_protocol(self) -> Any:
        return self.protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Connection:
    """One connection to a protocol serving an app that answers 200 with the body it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.refusals: list[str] = []
        install_head_limits(LIMITS, on_refusal=self.refusals.append)
        config = Config(
            app=self._app, http="httptools", interface="asgi3", lifespan="off", log_level="error"
        )
        config.load()
        self.transport = _Transport()
        self.protocol = HttpToolsProtocol(config, ServerState(), {}, asyncio.get_running_loop())
        self.transport.protocol = self.protocol
        self.protocol.connection_made(self.transport)

    async def _app(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(self, *chunks: bytes) -> int:
        """Feed `chunks` until the connection closes; the bytes fed."""
        fed = 0
        for chunk in chunks:
            if self.transport.closed:
                break
            self.protocol.data_received(chunk)
            fed += len(chunk)
        await asyncio.sleep(0.05)  # the app's task answers
        return fed

    def statuses(self) -> list[int]:
        lines = bytes(self.transport.written).split(b"HTTP/1.1 ")[1:]
        return [int(line[:3]) for line in lines]

    def close(self) -> None:
        self.protocol.connection_lost(None)


def _head(path: str = "/classify", headers: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", "Content-Length: 2"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_request_within_the_limits_is_served_even_with_a_large_body_in_one_chunk() -> None:
    async def go() -> tuple[list[int], list[bytes]]:
        connection = _Connection()
        body = b"x" * 50_000  # head and body arrive together, far past head_bytes
        head = _head().replace(b"Content-Length: 2", f"Content-Length: {len(body)}".encode())
        await connection.send(head + body)
        connection.close()
        return connection.statuses(), connection.bodies

    statuses, bodies = _run(go())
    assert statuses == [200]
    assert bodies == [b"x" * 50_000]


def test_each_request_on_a_connection_gets_the_whole_head_budget() -> None:
    async def go() -> list[int]:
        connection = _Connection()
        headers = [(f"x-{i}", "v" * 300) for i in range(7)]  # about 2.2 KiB a head
        for _ in range(3):  # 6.6 KiB in all, over head_bytes
            await connection.send(_head(headers=headers) + b"{}")
        connection.close()
        return connection.statuses()

    assert _run(go()) == [200, 200, 200]


@pytest.mark.parametrize(
    ("head", "status", "reason"),
    [
        (_head(path="/classify?" + "a" * 2000), 414, "url"),
        (_head(headers=[("x-big", "v" * 1100)]), 431, "header_size"),
        (_head(headers=[(f"x-{i}", "v") for i in range(20)]), 431, "header_count"),
    ],
    ids=["url", "header_size", "header_count"],
)
def test_a_head_past_a_limit_is_refused_with_its_status_and_counted(
    head: bytes, status: int, reason: str
) -> None:
    async def go() -> tuple[list[int], list[str], list[bytes], bool]:
        connection = _Connection()
        await connection.send(head + b"{}")
        connection.close()
        return (
            connection.statuses(),
            connection.refusals,
            connection.bodies,
            connection.transport.closed,
        )

    statuses, refusals, bodies, closed = _run(go())
    assert (statuses, refusals, bodies, closed) == ([status], [reason], [], True)


@pytest.mark.parametrize("piece", [1, 700, 65_536])
def test_a_header_flood_is_cut_off_at_the_head_limit_whatever_the_pieces(piece: int) -> None:
    flood = b"POST /classify HTTP/1.1\r\nHost: x\r\nX-Flood: " + b"a" * 1_000_000

    async def go() -> tuple[int, list[int], list[str], Any]:
        connection = _Connection()
        chunks = [
            flood[i : i + piece] for i in range(0, 10_000 if piece == 1 else len(flood), piece)
        ]
        fed = await connection.send(*chunks)
        parser_state = connection.protocol._refit_head_seen  # type: ignore[attr-defined]
        connection.close()
        return fed, connection.statuses(), connection.refusals, parser_state

    fed, statuses, refusals, seen = _run(go())
    assert statuses == [431]
    assert refusals == ["head_size"]
    assert seen <= LIMITS.head_bytes  # what reached the parser
    assert fed <= LIMITS.head_bytes + piece  # the connection closed as soon as it was over


def test_a_long_url_is_refused_before_it_is_buffered_whole() -> None:
    async def go() -> tuple[list[int], int]:
        connection = _Connection()
        await connection.send(b"GET /" + b"a" * 3000, b"b" * 100_000)
        buffered = len(connection.protocol.url)
        connection.close()
        return connection.statuses(), buffered

    statuses, buffered = _run(go())
    assert statuses == [414]
    assert buffered <= LIMITS.url_bytes


def test_a_malformed_head_still_gets_uvicorns_400() -> None:
    async def go() -> list[int]:
        connection = _Connection()
        await connection.send(b"NOT HTTP AT ALL\r\n\r\n")
        connection.close()
        return connection.statuses()

    assert _run(go()) == [400]


def test_every_refusal_reason_is_a_series_of_the_counter() -> None:
    from refit.monitoring.prometheus_metrics import HEAD_REFUSAL_REASONS

    assert set(HEAD_REFUSAL_REASONS) == set(compat_uvicorn.HEAD_REFUSALS)
