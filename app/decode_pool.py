"""Threads of their own for decoding uploads, apart from the threads that run the model."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

# How long one batch may hold a decode thread before other uploads get their turn. Small images take
# ~0.1 ms each, so a batch of them still goes in one hop; each hop costs ~0.4 ms.
SLICE_S = 0.05


class DecodePool:
    """Runs image decoding off the event loop, on at most `threads` threads.

    asyncio's default executor also runs the model calls and the result-store reads. With decoding
    there too, a burst of large uploads filled it, and every small request waited behind them (p50
    156 ms beside 8 clients posting 6000x6000 PNGs; docs/performance.md). Its own few threads keep
    decoding to a bounded share of the CPU: large uploads queue behind each other, not the model.
    """

    def __init__(self, threads: int):
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vae-decode")

    async def run(self, function, /, *args, **kwargs):
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def map_in_slices(self, function: Callable[[Item], Outcome], items: Sequence[Item],
                            slice_s: float = SLICE_S) -> list[Outcome]:
        """`function` over `items`, in order, in turns of about `slice_s` seconds on the pool.

        A batch of 256 large images decoded in one turn held the only decode thread for up to a
        minute, and every large single upload waited behind all of it (5.7 s behind 64 images;
        docs/performance.md). Between turns, the uploads queued meanwhile are decoded first.
        """
        outcomes: list[Outcome] = []
        while len(outcomes) < len(items):
            outcomes += await self.run(_map_for_a_while, function, items[len(outcomes):], slice_s)
        return outcomes

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _map_for_a_while(function, items, slice_s: float) -> list:
    """`function` over the first items, at least one, until `slice_s` has passed."""
    deadline = time.monotonic() + slice_s
    outcomes = []
    for item in items:
        outcomes.append(function(item))
        if time.monotonic() >= deadline:
            break
    return outcomes
