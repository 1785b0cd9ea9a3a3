"""Background load on a server's /classify that keeps the ids of acknowledged predictions."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


class ClassifyLoad:
    """`clients` threads posting one text at a time to `url`/classify until `stop`.

    The id of every prediction answered with 200 goes to `acknowledged`; a client ends
    at its first transport error (the server is gone).
    """

    def __init__(self, url: str, texts: list[str], clients: int = 1) -> None:
        self.url = url
        self.texts = texts
        self.clients = clients
        self.acknowledged: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def start(self) -> ClassifyLoad:
        self._thread.start()
        return self

    def wait_for(self, count: int, timeout: float = 30) -> None:
        """Return once `count` predictions are acknowledged, or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with ThreadPoolExecutor(max_workers=self.clients) as pool:
            list(pool.map(self._client, range(self.clients)))

    def _client(self, offset: int) -> None:
        i = offset
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                text = self.texts[i % len(self.texts)]
                try:
                    response = client.post(f"{self.url}/classify", json={"texts": [text]})
                except (httpx.HTTPError, OSError):
                    return
                if response.status_code == 200:
                    self.acknowledged.extend(item["id"] for item in response.json())
                i += self.clients
