"""MicroBatcher and the serving settings, without a server."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from finsec_assets.serve.batching import MicroBatcher
from finsec_assets.settings import ServeSettings, SettingsError, is_loopback


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_batches_within_the_size_limit_and_get_their_own_results():
    calls = []

    def double(items):
        calls.append(list(items))
        time.sleep(0.05)  # while this batch computes, the next one fills
        return [x * 2 for x in items], len(calls)

    async def main():
        batcher = MicroBatcher("t", double, max_items=8, max_wait_s=0.02)
        batcher.start()
        requests = [[i, 100 + i] for i in range(20)]  # 20 requests of 2 items
        answers = await asyncio.gather(*(batcher.submit(r) for r in requests))
        await batcher.stop()
        return requests, answers, batcher.stats

    requests, answers, stats = run(main())
    for request, (result, _) in zip(requests, answers):
        assert result == [x * 2 for x in request]
    assert all(len(c) <= 8 for c in calls) and sum(map(len, calls)) == 40
    assert len(calls) < 20 and stats.largest == 8  # requests were gathered


def test_a_failing_batch_fails_only_its_requests_and_the_worker_goes_on():
    def maybe_fail(items):
        if "bad" in items:
            raise ValueError("bad item")
        return items, None

    async def main():
        batcher = MicroBatcher("t", maybe_fail, max_items=1, max_wait_s=0)
        batcher.start()
        results = await asyncio.gather(batcher.submit(["bad"]), batcher.submit(["good"]), return_exceptions=True)
        await batcher.stop()
        return results

    bad, good = run(main())
    assert isinstance(bad, ValueError) and good == (["good"], None)


def test_a_request_that_gave_up_is_not_computed():
    seen = []
    gate = threading.Event()

    def slow(items):
        seen.extend(items)
        gate.wait(5)
        return items, None

    async def main():
        batcher = MicroBatcher("t", slow, max_items=1, max_wait_s=0)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(["first"]))
        await asyncio.sleep(0.05)  # "first" is computing
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.submit(["abandoned"]), 0.05)
        gate.set()
        await first
        assert await batcher.submit(["last"]) == (["last"], None)
        await batcher.stop()

    run(main())
    assert seen == ["first", "last"]


def test_serve_settings_are_validated_with_the_variable_named():
    s = ServeSettings.from_env({"FINSEC_SERVE_MAX_TEXTS": "3", "FINSEC_SERVE_BATCH_WAIT_MS": "0"})
    assert s.max_texts == 3 and s.batch_wait_ms == 0 and s.token is None
    for env, name in [({"FINSEC_SERVE_MAX_TEXTS": "many"}, "FINSEC_SERVE_MAX_TEXTS"),
                      ({"FINSEC_SERVE_MAX_TEXTS": "0"}, "FINSEC_SERVE_MAX_TEXTS"),
                      ({"FINSEC_SERVE_TIMEOUT_SECONDS": "-1"}, "FINSEC_SERVE_TIMEOUT_SECONDS"),
                      ({"FINSEC_SERVE_TOKEN": "short"}, "FINSEC_SERVE_TOKEN"),
                      ({"FINSEC_SERVE_DEVICE": "tpu"}, "FINSEC_SERVE_DEVICE")]:
        with pytest.raises(SettingsError, match=name):
            ServeSettings.from_env(env)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.5", False), ("example.com", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
