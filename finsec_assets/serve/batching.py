"""Micro-batching: concurrent requests to one model are answered by one call on a batch.

Requests wait in a queue. The worker takes the first, then keeps taking until the batch holds
``max_items`` items or ``max_wait`` has passed since the first arrived, and runs the batch function on
its own thread (the event loop keeps accepting requests meanwhile, so while a batch computes the next
one fills up). A batch function gets every request's payloads in one list and returns one result per
payload; a failure fails exactly the requests of that batch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Pending:
    items: Sequence[Any]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    batches: int = 0
    items: int = 0
    requests: int = 0
    largest: int = 0

    def as_dict(self) -> dict:
        return {"batches": self.batches, "items": self.items, "requests": self.requests, "largest_batch": self.largest,
                "mean_batch": round(self.items / self.batches, 2) if self.batches else 0.0}


class MicroBatcher:
    """``await batcher.submit(items)`` -> ``(results, extra)``; ``run(all_items) -> (results, extra)`` runs batches."""

    def __init__(self, name: str, run: Callable[[list], tuple[list, Any]], max_items: int, max_wait_s: float):
        self.name, self.run, self.max_items, self.max_wait_s = name, run, max(1, max_items), max(0.0, max_wait_s)
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{name}")

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._worker(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: Sequence[Any]):
        if self._queue is None:
            raise RuntimeError(f"batcher {self.name} is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(list(items), future))
        return await future

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Pending | None = None
        while True:
            first = carry or await self._queue.get()
            carry = None
            batch, size = [first], len(first.items)
            deadline = first.enqueued + self.max_wait_s
            while size < self.max_items:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self._queue.get(), left)
                    except TimeoutError:
                        break
                if size + len(nxt.items) > self.max_items:
                    carry = nxt  # starts the next batch; a batch never exceeds the limit unless one request does
                    break
                batch.append(nxt)
                size += len(nxt.items)
            live = [p for p in batch if not p.future.done()]  # a request that timed out is not computed
            if not live:
                continue
            items = [x for p in live for x in p.items]
            try:
                results, extra = await loop.run_in_executor(self._executor, self.run, items)
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            self.stats.batches += 1
            self.stats.items += len(items)
            self.stats.requests += len(live)
            self.stats.largest = max(self.stats.largest, len(items))
            start = 0
            for p in live:
                if not p.future.done():
                    p.future.set_result((results[start:start + len(p.items)], extra))
                start += len(p.items)
