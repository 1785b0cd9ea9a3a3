"""One flooding client for bench/abuse_bench.py (d): request heads of 100 MiB, again as
soon as the server closes each, until SIGTERM; then one JSON line, the bytes each
connection took.

    python bench/head_flood.py HOST PORT

A process of its own, started with nothing else imported, so that the timed client
does not wait for Python's GIL behind it.
"""

from __future__ import annotations

import json
import signal
import socket
import sys

FLOOD = 100 << 20
CHUNK = b"a" * (1 << 20)


def flood_once(host: str, port: int) -> int:
    """Send a 100 MiB request head until the server closes; the bytes it took."""
    sent = 0
    try:
        with socket.create_connection((host, port), timeout=60) as sock:
            sock.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            while sent < FLOOD:
                sock.sendall(CHUNK)
                sent += len(CHUNK)
    except OSError:  # reset or broken pipe: the server closed it (or is down)
        pass
    return sent


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    taken = [flood_once(host, port)]
    print("flooding", flush=True)  # the parent times /classify from here on
    while not stop:
        taken.append(flood_once(host, port))
    print(json.dumps(taken), flush=True)


if __name__ == "__main__":
    main()
