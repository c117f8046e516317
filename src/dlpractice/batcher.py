"""Dynamic batching: requests that arrive together share one model call, as serving systems do.

A model answers 16 sentences in little more time than one (the cost of a small batch is mostly the
fixed cost of a forward pass), so under load the server waits up to `max_wait_ms` after the first
request for others to join it, up to `max_batch` of them, then runs them as one batch. Alone, a request
waits at most `max_wait_ms`. The model runs in a worker thread: the event loop keeps accepting requests
(and filling the next batch) while a batch is computed.
It knows nothing of the web: `dlp serve` (dlpractice.serve) puts it behind POST /predict, and lab p2
measures it in-process, with max_batch 1 (one request at a time) against larger batches.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

Predict = Callable[[list[Any]], list[Any]]


@dataclass
class BatchStats:
    """What the batcher did: calls of predict(), requests answered, and each call's batch size."""

    calls: int = 0
    items: int = 0
    sizes: list[int] = field(default_factory=list)

    @property
    def mean_batch(self) -> float:
        return self.items / self.calls if self.calls else 0.0


class Batcher:
    """`await batcher.submit(item)` returns predict([... item ...])'s answer for that item.

    `predict` takes a list and returns one answer per item, in order. An error in a batch is raised
    to every caller of that batch (and the batcher goes on with the next one)."""

    def __init__(self, predict: Predict, max_batch: int = 16, max_wait_ms: float = 5.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be at least 1 and max_wait_ms at least 0")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[Any, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            # started by the first request, in the loop that serves it (a test client may bring another)
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._run())
        future = loop.create_future()
        await self._queue.put((item, future))
        return await future

    async def _collect(self) -> list[tuple[Any, asyncio.Future]]:
        """The first waiting request, and those that arrive within max_wait of it (at most max_batch)."""
        batch = [await self._queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            if left <= 0:
                while len(batch) < self.max_batch and not self._queue.empty():  # already here: take them
                    batch.append(self._queue.get_nowait())
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            items = [item for item, _ in batch]
            try:
                answers = await asyncio.to_thread(self.predict, items)
                if len(answers) != len(items):
                    raise RuntimeError(f"predict returned {len(answers)} answers for {len(items)} requests")
            except Exception as err:  # every caller of this batch gets the error; the next batch runs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            self.stats.calls += 1
            self.stats.items += len(items)
            self.stats.sizes.append(len(items))
            for (_, future), answer in zip(batch, answers):
                if not future.done():  # a caller that went away (cancelled) needs no answer
                    future.set_result(answer)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
