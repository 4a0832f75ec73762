"""Sustained EDGAR request rate: the real EdgarClient, with the limiter the Dagster resource builds from
FINSEC_EDGAR_MAX_RPS (default 10, a file lock shared by every process), driven by several threads against the
replay server serving a synthetic universe, for ``--seconds`` (default 600). The server runs in its own process
(as SEC is another machine), so its clock is not held up by the client's threads.

It prints the requests per second held (overall and per minute) and the number of 1-second sliding windows
holding more than the limit (violations), counted on the times the *server* received the requests (what SEC
would see). The issue's bar: >= 9.5 requests/s for 10 minutes with zero violations at 10/s.

    nice -n 10 .venv/bin/python benchmarks/edgar_rate.py [--seconds 600] [--threads 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import bisect
import json
import multiprocessing
import os
import tempfile
import threading
import time
from pathlib import Path

from finsec_assets.edgar.client import EdgarClient, EdgarError, rate_limiter
from finsec_assets.edgar.replay import ReplayServer
from finsec_assets.edgar.synthetic import SyntheticUniverse
from finsec_assets.settings import Settings


def windows_over(times: list[float], limit: int, window: float = 1.0) -> tuple[int, int]:
    """(windows [t, t + window) starting at a request that hold more than ``limit`` requests, the most in one)."""
    times = sorted(times)
    over, most = 0, 0
    for i, t in enumerate(times):
        n = bisect.bisect_left(times, t + window, lo=i) - i
        most = max(most, n)
        over += n > limit
    return over, most


def paths(universe: SyntheticUniverse, documents_every: int):
    """An endless, varied request mix: submissions JSON, full-index files and (every Nth) a filing document."""
    i = 0
    while True:
        for company in universe.companies:
            i += 1
            if documents_every and i % documents_every == 0:
                f = company.filings[i % len(company.filings)]
                yield "www", f.document_path
            elif i % 7 == 0:
                q = universe.quarters[i % len(universe.quarters)]
                yield "www", f"/Archives/edgar/full-index/{q[:4]}/QTR{q[-1]}/master.idx"
            else:
                yield "data", f"/submissions/CIK{company.cik:010d}.json"


def _serve(companies: int, conn) -> None:
    """Child process: the replay server of the universe; sends its URL, then on 'stop' the 200s' arrival times."""
    universe = SyntheticUniverse(companies, "2023Q1:2023Q4", seed=0)
    with ReplayServer(universe=universe) as server:
        conn.send(server.url)
        conn.recv()
        conn.send([t for t, _, status, _ in server.requests if status == 200])
    universe.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--threads", type=int, default=4, help="concurrent callers (raw_filings uses 4)")
    ap.add_argument("--companies", type=int, default=2000)
    ap.add_argument("--documents-every", type=int, default=20, help="every Nth request is a filing document (0: none)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    universe = SyntheticUniverse(args.companies, "2023Q1:2023Q4", seed=0)  # the same one the server builds
    home = Path(tempfile.mkdtemp(prefix="finsec-edgar-rate-"))
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(target=_serve, args=(args.companies, child), daemon=True)
    proc.start()
    url = parent.recv()
    env = {**os.environ, "FINSEC_HOME": str(home), **universe.env(url)}
    settings = Settings.from_env(env)
    limit = settings.edgar_max_rps
    # exactly what FinsecResource.edgar() builds: the host-wide file-lock limiter, no response cache
    limiter = rate_limiter(limit, home / "edgar-rate-limit.json", settings.edgar_www_url, settings.edgar_data_url)
    client = EdgarClient(source="live", www_url=url, data_url=url, user_agent=settings.edgar_user_agent,
                         limiter=limiter, max_rps=limit)
    source, lock, errors = paths(universe, args.documents_every), threading.Lock(), []
    stop = time.time() + args.seconds

    def worker():
        while time.time() < stop:
            with lock:
                host, path = next(source)
            try:
                client.get(host, path)
            except EdgarError as exc:
                errors.append(str(exc))

    t0 = time.time()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    parent.send("stop")
    times = parent.recv()
    proc.join(10)
    universe.close()

    int_limit = int(limit) if limit else 0
    over, most = windows_over(times, int_limit) if int_limit else (0, windows_over(times, 10**9)[1])
    rate = len(times) / elapsed
    per_minute = []
    for m in range(int(elapsed // 60) + (elapsed % 60 > 1)):
        lo, hi = t0 + 60 * m, min(t0 + 60 * (m + 1), t0 + elapsed)
        n = sum(lo <= t < hi for t in times)
        per_minute.append(round(n / (hi - lo), 3))
    print(f"EDGAR client sustained rate ({args.threads} threads, FINSEC_EDGAR_MAX_RPS={limit or 'unlimited'}, "
          f"file-lock limiter, replay server in its own process on 127.0.0.1, times as the server saw them)")
    print("| seconds | requests | req/s held | min req/s in a minute | max in any 1 s window | windows over limit | errors |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {elapsed:.0f} | {len(times)} | {rate:.3f} | {min(per_minute) if per_minute else 0:.3f} | {most} | {over} | {len(errors)} |")
    print("per-minute req/s:", per_minute)
    if errors:
        print("first errors:", errors[:3])
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": elapsed, "requests": len(times), "rps": rate,
                                               "per_minute_rps": per_minute, "max_in_1s": most, "violations": over,
                                               "limit": limit, "threads": args.threads, "errors": len(errors)}, indent=1))


if __name__ == "__main__":
    main()
