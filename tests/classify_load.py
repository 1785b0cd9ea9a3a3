"""Background load on a server's /classify that keeps the ids of acknowledged predictions,
and the ids a prediction log holds, to compare them with."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from refit.monitoring.prediction_log import PredictionLog

# The response header that says a prediction was answered before it was on record.
LOG_HEADER = "x-refit-log"


class ClassifyLoad:
    """`clients` threads posting one text at a time to `url`/classify until `stop`.

    The id of every prediction answered with 200 goes to `acknowledged`, and also to
    `unconfirmed` when the response said it was not confirmed written to the prediction
    log; `statuses` counts responses by status. A client ends at its first transport
    error (the server is gone).
    """

    def __init__(self, url: str, texts: list[str], clients: int = 1) -> None:
        self.url = url
        self.texts = texts
        self.clients = clients
        self.acknowledged: list[str] = []
        self.unconfirmed: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.flagged_refusals = 0  # refusals that carried the header too
        self._lock = threading.Lock()  # clients count concurrently
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

    def wait_responses(self, count: int, timeout: float = 30) -> None:
        """Return once `count` responses of any status came back, or after `timeout` s."""
        deadline = time.monotonic() + timeout
        while self.statuses.total() < count and time.monotonic() < deadline:
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
                self._count(response)
                i += self.clients

    def _count(self, response: httpx.Response) -> None:
        flagged = response.headers.get(LOG_HEADER) == "unconfirmed"
        ids = [item["id"] for item in response.json()] if response.status_code == 200 else []
        with self._lock:
            self.acknowledged.extend(ids)
            if flagged:
                self.unconfirmed.extend(ids)
                self.flagged_refusals += not ids
            self.statuses[response.status_code] += 1


def logged_ids(url: str) -> set[str]:
    """The ids of every prediction the log at `url` holds."""
    log = PredictionLog(url)
    try:
        return set(log.read(0, 4e9, columns=["id"])["id"])
    finally:
        log.close()
