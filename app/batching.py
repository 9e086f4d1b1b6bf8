"""Dynamic batching, as TensorFlow Serving does it: concurrent requests share one model call.

Requests queue up while the model is busy; when it frees up, everything waiting (up to `max_size`
images) goes in one call. An optional `max_wait` holds a non-full batch open a little longer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

log = logging.getLogger(__name__)
Result = TypeVar("Result")


@dataclass
class _Pending:
    images: np.ndarray
    future: asyncio.Future


class DynamicBatcher(Generic[Result]):
    def __init__(self, run: Callable[[np.ndarray], Result], split: Callable[[Result, int, int], Result],
                 max_size: int, max_wait_s: float, on_batch: Callable[[int], None] | None = None):
        self._run = run          # blocking: images -> result for all of them; runs in a worker thread
        self._split = split      # (result, start, stop) -> the rows of one request
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="dynamic-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()

    async def submit(self, images: np.ndarray) -> Result:
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(images, future))
        return await future

    async def _collect(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        size = len(batch[0].images)
        deadline = asyncio.get_running_loop().time() + self._max_wait_s
        while size < self._max_size:
            try:
                pending = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(pending)
            size += len(pending.images)
        return [p for p in batch if not p.future.done()]  # drop callers that went away

    async def _serve(self) -> None:
        while True:
            batch = await self._collect()
            if not batch:
                continue
            images = batch[0].images if len(batch) == 1 else np.concatenate([p.images for p in batch])
            if self._on_batch:
                self._on_batch(len(images))
            try:
                result = await asyncio.to_thread(self._run, images)
            except Exception as error:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            start = 0
            for pending in batch:
                stop = start + len(pending.images)
                if not pending.future.done():
                    pending.future.set_result(self._split(result, start, stop))
                start = stop
