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
