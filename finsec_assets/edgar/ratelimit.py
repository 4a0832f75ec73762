"""SEC fair access: at most N requests in any one-second window.

``RateLimiter`` holds every thread of one process to the limit. Give it a
``shared_path`` (a file on a disk all processes see, FINSEC_HOME by default in
the Dagster resource) and every process on the machine shares one window through
an ``fcntl`` lock, which is what Dagster's multiprocess executor needs. For a
deployment over several machines, give each machine ``FINSEC_EDGAR_MAX_RPS`` =
10 / number of machines.
"""

from __future__ import annotations

import collections
import fcntl
import json
import os
import threading
import time
from pathlib import Path

WINDOW_S = 1.0
# Requests are also spaced evenly and the window padded, so that scheduling jitter between taking a
# slot and the request reaching the server cannot squeeze 11 requests into one second there.
MARGIN_S = 0.05


class RateLimiter:
    def __init__(self, max_per_second: float = 10, shared_path: str | Path | None = None, clock=time.time, sleep=time.sleep):
        if not 0 < max_per_second <= 10:
            raise ValueError(f"max_per_second={max_per_second}: SEC fair access allows at most 10 requests per second")
        self.max_per_window = max(1, int(max_per_second))
        self.shared_path = Path(shared_path) if shared_path else None
        self._lock = threading.Lock()
        self._times: collections.deque[float] = collections.deque()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        """Block until one more request fits in the window, then record it."""
        with self._lock:
            while True:
                wait = self._try_take()
                if wait <= 0:
                    return
                self._sleep(wait)

    def _try_take(self) -> float:
        if self.shared_path is None:
            return self._take(self._times)
        self.shared_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.shared_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read().strip()
                times = collections.deque(json.loads(raw) if raw else [])
                wait = self._take(times)
                if wait <= 0:
                    fh.seek(0)
                    fh.truncate()
                    fh.write(json.dumps(list(times)))
                    fh.flush()
                    os.fsync(fh.fileno())
                return wait
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _take(self, times: collections.deque) -> float:
        now = self._clock()
        window = WINDOW_S + MARGIN_S
        while times and now - times[0] >= window:
            times.popleft()
        spacing = WINDOW_S / self.max_per_window
        if times and now - times[-1] < spacing:
            return spacing - (now - times[-1])
        if len(times) < self.max_per_window:
            times.append(now)
            return 0.0
        return window - (now - times[0]) + 0.001
