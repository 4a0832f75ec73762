"""SEC fair access: at most N requests per second, N <= 10 and possibly fractional.

A rate ``r`` is a sliding window of ``k = max(1, floor(r))`` requests per
``k / r`` seconds, spaced ``1 / r`` apart: 10 is 10 per second, 2.5 is 2 per
0.8 s, 0.5 is one request every 2 s.

``RateLimiter`` holds every thread of one process to the limit. Give it a
``shared_path`` (a file on a disk all processes see, FINSEC_HOME by default in
the Dagster resource) and every process on the machine shares one window through
an ``fcntl`` lock, which is what Dagster's multiprocess executor needs.
``RedisRateLimiter`` shares one window between machines (Celery workers, k8s
pods with their own FINSEC_HOME) through an atomic Lua script on one Redis key,
timed by the Redis server's clock so hosts' clocks need not agree.
"""

from __future__ import annotations

import collections
import fcntl
import json
import math
import os
import threading
import time
from pathlib import Path

WINDOW_S = 1.0
# Requests are also spaced evenly and the window padded, so that scheduling jitter between taking a
# slot and the request reaching the server cannot squeeze 11 requests into one second there.
MARGIN_S = 0.05
# A caller woken late from a wait has its request counted from when its slot opened, up to this much earlier than
# it actually goes: small enough to stay well inside MARGIN_S, large enough to absorb a loaded machine's oversleep.
MAX_BACKDATE_S = 0.005


def window_for(max_per_second: float) -> tuple[int, float]:
    """(requests per window, window seconds) for a rate in (0, 10]; fractional rates keep their value."""
    try:
        rate = float(max_per_second)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"max_per_second={max_per_second!r}: expected a number of requests per second") from exc
    if not 0 < rate <= 10 or math.isnan(rate):
        raise ValueError(f"max_per_second={max_per_second}: SEC fair access allows more than 0 and at most 10 requests per second")
    count = max(1, int(rate))
    return count, count / rate


class RateLimiter:
    def __init__(self, max_per_second: float = 10, shared_path: str | Path | None = None, clock=time.time, sleep=time.sleep):
        self.max_per_window, self.window_s = window_for(max_per_second)
        self.shared_path = Path(shared_path) if shared_path else None
        self._lock = threading.Lock()
        self._times: collections.deque[float] = collections.deque()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        """Block until one more request fits in the window, then record it."""
        with self._lock:
            due = None
            while True:
                wait = self._try_take(due)
                if wait <= 0:
                    return
                due = self._clock() + wait
                self._sleep(wait)

    def _try_take(self, due: float | None = None) -> float:
        if self.shared_path is None:
            return self._take(self._times, due)
        self.shared_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.shared_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read().strip()
                times = collections.deque(json.loads(raw) if raw else [])
                wait = self._take(times, due)
                if wait <= 0:
                    fh.seek(0)
                    fh.truncate()
                    fh.write(json.dumps(list(times)))
                    # flush, not fsync: every process on the host reads the same page cache, and a busy disk's
                    # fsync latency here would hold a request back after its slot was counted (a request held
                    # more than the 50 ms margin puts 11 in one second at the server)
                    fh.flush()
                return wait
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _take(self, times: collections.deque, due: float | None = None) -> float:
        """Record a request and return 0, or return how long to wait. ``due``: when the slot this caller waited
        for opened. The request is counted from then (not from when a loaded machine woke the thread up, a few ms
        later; at most MAX_BACKDATE_S earlier), so oversleeping does not pile up into a lower rate."""
        now = self._clock()
        window = self.window_s + MARGIN_S
        gone = None
        while times and now - times[0] >= window - 1e-6:
            gone = times.popleft()
        spacing = self.window_s / self.max_per_window
        if times and now - times[-1] < spacing - 1e-6:  # the tolerance keeps float rounding from spinning
            return spacing - (now - times[-1])
        if len(times) < self.max_per_window:
            stamp = now
            if due is not None and due < now:
                earliest = max([due] + ([times[-1] + spacing] if times else []) + ([gone + window] if gone is not None else []))
                stamp = min(now, max(earliest, now - MAX_BACKDATE_S))
            times.append(stamp)
            return 0.0
        return window - (now - times[0]) + 0.001


# KEYS[1]: the shared window (a sorted set of request times in µs, Redis server clock).
# ARGV: requests per window, window µs (margin included), spacing µs, a unique member suffix.
# Returns 0 when a slot was taken, else the µs to wait. Atomic: Redis runs one script at a time.
_SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local spacing = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if #last > 0 and now - tonumber(last[2]) < spacing then
  return spacing - (now - tonumber(last[2]))
end
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, now .. ':' .. ARGV[4])
  redis.call('PEXPIRE', key, math.ceil(window / 1000) + 1000)
  return 0
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tonumber(first[2]) + window - now + 1000
"""

DEFAULT_REDIS_KEY = "finsec:edgar:requests"


class RedisRateLimiter:
    """One sliding window shared by every process on every host that uses the same Redis and key."""

    def __init__(self, max_per_second: float, url: str, key: str = DEFAULT_REDIS_KEY, sleep=time.sleep):
        import redis  # a dependency of the Celery deployment; imported only when a shared limit is asked for

        self.max_per_window, self.window_s = window_for(max_per_second)
        self.url, self.key, self._sleep = url, key, sleep
        self._redis = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._redis.register_script(_SLIDING_WINDOW_LUA)
        self._ids = iter(range(1 << 62))
        self._tag = f"{os.getpid()}-{threading.get_ident()}-{id(self)}"
        self._lock = threading.Lock()

    def ping(self) -> None:
        """Raise a ConnectionError naming the URL when Redis cannot be reached."""
        import redis

        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise ConnectionError(f"EDGAR rate limit: Redis at {self.url} is unreachable ({exc}); "
                                  "start it, fix FINSEC_EDGAR_RATE_LIMIT_URL, or set it to 'local'") from exc

    def acquire(self) -> None:
        """Block until one more request fits in the shared window, then record it."""
        import redis

        window_us = int((self.window_s + MARGIN_S) * 1e6)
        spacing_us = int(self.window_s / self.max_per_window * 1e6)
        while True:
            with self._lock:
                member = f"{self._tag}-{next(self._ids)}"
            try:
                wait_us = int(self._script(keys=[self.key], args=[self.max_per_window, window_us, spacing_us, member]))
            except redis.RedisError as exc:
                raise ConnectionError(f"EDGAR rate limit: Redis at {self.url} failed ({exc})") from exc
            if wait_us <= 0:
                return
            self._sleep(wait_us / 1e6)
