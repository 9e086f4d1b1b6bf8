"""Threads of their own for decoding uploads, apart from the threads that run the model."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor


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

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
