import multiprocessing as mp
import threading

from finsec_assets.edgar.ratelimit import RateLimiter


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def time(self):
        return self.t

    def sleep(self, s):
        self.t += s


def max_in_window(times, window=1.0):
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_sliding_window_never_exceeds_limit():
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock.time, sleep=clock.sleep)
    stamps = []
    for _ in range(55):
        limiter.acquire()
        stamps.append(clock.t)
    assert max_in_window(stamps) == 10
    assert 4.0 <= stamps[-1] - stamps[0] < 6.0  # close to 10/s, never above


def test_oversleeping_does_not_lower_the_rate():
    """A loaded machine wakes a waiting thread late (4 ms here): the slot still counts from when it opened, so
    600 requests keep 10/1.05 per second, and the requests as sent (late) never put 11 in one second."""
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock.time, sleep=lambda s: clock.sleep(s + 0.004))
    sent = []
    for _ in range(600):
        limiter.acquire()
        sent.append(clock.t)
    assert max_in_window(sent) == 10
    rate = (len(sent) - 1) / (sent[-1] - sent[0])
    assert rate >= 9.5  # counting each slot from the wake-up instead gave 9.48 here


def test_threads_share_one_window():
    limiter = RateLimiter(10)
    stamps, lock = [], threading.Lock()

    def worker():
        for _ in range(6):
            limiter.acquire()
            with lock:
                import time

                stamps.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(stamps) == 24 and max_in_window(stamps) <= 10


def _proc(path, q):
    import time

    limiter = RateLimiter(10, shared_path=path)
    for _ in range(8):
        limiter.acquire()
        q.put(time.time())


def test_processes_share_one_window_through_a_file(tmp_path):
    q = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_proc, args=(tmp_path / "rl.json", q)) for _ in range(3)]
    [p.start() for p in procs]
    [p.join(30) for p in procs]
    stamps = [q.get() for _ in range(24)]
    assert max_in_window(stamps) <= 10


# ------------------------------------------------------------------ fractional and shared rates


import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from finsec_assets.edgar.ratelimit import RedisRateLimiter, window_for
from finsec_assets.settings import Settings, SettingsError


@pytest.mark.parametrize(("rate", "gap", "per_two_seconds"), [(0.5, 2.0, 1), (2.5, 0.4, 5), (1.5, 1 / 1.5, 3)])
def test_fractional_rates_keep_their_value(rate, gap, per_two_seconds):
    clock = FakeClock()
    limiter = RateLimiter(rate, clock=clock.time, sleep=clock.sleep)
    stamps = []
    for _ in range(12):
        limiter.acquire()
        stamps.append(clock.t)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert min(gaps) >= gap - 1e-5  # 0.5/s: one request every 2 s, not 1/s
    assert max_in_window(stamps, window=2.0) <= per_two_seconds
    assert (len(stamps) - 1) / (stamps[-1] - stamps[0]) <= rate + 1e-9


@pytest.mark.parametrize("bad", [0, -1, 10.5, float("nan"), "fast"])
def test_rates_out_of_range_are_refused(bad):
    with pytest.raises(ValueError, match="max_per_second"):
        window_for(bad)


def test_settings_choose_a_shared_limit_under_celery_and_k8s():
    assert Settings.from_env({}).edgar_rate_limit_url is None
    assert Settings.from_env({"FINSEC_EDGAR_MAX_RPS": "0.5"}).edgar_max_rps == 0.5
    assert Settings.from_env({"FINSEC_EXECUTOR": "celery"}).edgar_rate_limit_url == "redis://127.0.0.1:6379/0"
    k8s = {"FINSEC_EXECUTOR": "k8s", "FINSEC_CELERY_BROKER": "redis://redis:6379/1"}
    assert Settings.from_env(k8s).edgar_rate_limit_url == "redis://redis:6379/1"
    assert Settings.from_env({**k8s, "FINSEC_EDGAR_RATE_LIMIT_URL": "local"}).edgar_rate_limit_url is None
    explicit = {"FINSEC_EDGAR_RATE_LIMIT_URL": "redis://10.0.0.5:6379/2"}
    assert Settings.from_env(explicit).edgar_rate_limit_url == "redis://10.0.0.5:6379/2"
    with pytest.raises(SettingsError, match="FINSEC_EDGAR_RATE_LIMIT_URL"):
        Settings.from_env({"FINSEC_EDGAR_RATE_LIMIT_URL": "http://127.0.0.1:6379"})
    with pytest.raises(SettingsError, match="FINSEC_EDGAR_MAX_RPS"):
        Settings.from_env({"FINSEC_EDGAR_MAX_RPS": "12"})


REDIS_URL = os.environ.get("FINSEC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_limit_url():
    try:
        RedisRateLimiter(10, REDIS_URL).ping()
    except (ConnectionError, ImportError) as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


HOST = r"""
import sys
from finsec_assets.defs.common import FinsecResource
client = FinsecResource().edgar()
assert type(client.limiter).__name__ == "RedisRateLimiter", client.limiter
for i in range(int(sys.argv[1])):
    client.get("data", "/submissions/CIK0000320193.json", refresh=True)
"""


def test_two_hosts_share_one_limit_through_redis(replay_server, redis_limit_url, tmp_path):
    """Two processes with their own FINSEC_HOME (two pods) and one Redis: never more than 10 requests in a second."""
    key_db = redis_limit_url  # a fresh key per test run: the window starts empty
    import redis

    redis.Redis.from_url(key_db).delete("finsec:edgar:requests")
    repo = Path(__file__).resolve().parents[2]
    procs = []
    for host in ("pod-a", "pod-b"):
        env = {**os.environ, "PYTHONPATH": str(repo), "FINSEC_HOME": str(tmp_path / host), "FINSEC_EXECUTOR": "k8s",
               "FINSEC_EDGAR_RATE_LIMIT_URL": key_db, "FINSEC_EDGAR_SOURCE": "live",
               "FINSEC_EDGAR_USER_AGENT": f"finsec test {uuid.uuid4().hex[:6]}@example.com",
               "FINSEC_EDGAR_WWW_URL": replay_server.url, "FINSEC_EDGAR_DATA_URL": replay_server.url}
        procs.append(subprocess.Popen([sys.executable, "-c", HOST, "18"], env=env, stderr=subprocess.PIPE))
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    stamps = [t for t, path, _, _ in replay_server.requests if path == "/submissions/CIK0000320193.json"]
    assert len(stamps) == 36
    assert max_in_window(stamps) <= 10
    assert len({agent for *_, agent in replay_server.requests}) == 2  # both hosts did make requests
    # the control: each alone would be allowed 10/s, so together unshared they would exceed it
    assert stamps[-1] - stamps[0] >= 3.0


def test_unreachable_redis_fails_up_front_naming_the_url(tmp_path, monkeypatch):
    from finsec_assets.defs.common import FinsecResource

    for name, value in {"FINSEC_HOME": str(tmp_path), "FINSEC_EDGAR_SOURCE": "live", "FINSEC_EXECUTOR": "celery",
                        "FINSEC_EDGAR_USER_AGENT": "finsec tests tests@example.com",
                        "FINSEC_EDGAR_RATE_LIMIT_URL": "redis://127.0.0.1:1/0"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConnectionError, match=r"redis://127.0.0.1:1/0.*FINSEC_EDGAR_RATE_LIMIT_URL"):
        FinsecResource().edgar()
    monkeypatch.setenv("FINSEC_EDGAR_SOURCE", "sample")  # the bundled sample makes no requests: no Redis needed
    assert type(FinsecResource().edgar().limiter).__name__ == "RateLimiter"
