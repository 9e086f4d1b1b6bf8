import asyncio
import threading

import numpy as np
import pytest

from app.batching import DynamicBatcher


def _batcher(run, max_size=64, max_wait_s=0.0):
    return DynamicBatcher(run, lambda result, start, stop: result[start:stop], max_size, max_wait_s)


def test_concurrent_requests_share_model_calls_and_get_their_own_rows():
    calls = []
    gate = threading.Event()

    def run(images):
        gate.wait(5)  # hold the first call so the rest queue up behind it
        calls.append(len(images))
        return images[:, 0, 0] * 10

    async def main():
        batcher = _batcher(run)
        batcher.start()
        first = asyncio.create_task(batcher.submit(np.full((1, 2, 2), 0)))
        await asyncio.sleep(0.05)  # the first request is now inside the model call
        rest = [asyncio.create_task(batcher.submit(np.full((1, 2, 2), i))) for i in range(1, 20)]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        return results

    results = asyncio.run(main())
    assert [r.tolist() for r in results] == [[10 * i] for i in range(20)]
    assert calls == [1, 19]


def test_batches_respect_the_maximum_size():
    calls = []

    def run(images):
        calls.append(len(images))
        return images

    async def main():
        batcher = _batcher(run, max_size=4, max_wait_s=0.05)
        batcher.start()
        await asyncio.gather(*[batcher.submit(np.zeros((1, 2, 2))) for _ in range(10)])
        await batcher.stop()

    asyncio.run(main())
    assert max(calls) <= 4 and sum(calls) == 10


def test_a_failing_model_call_fails_its_requests_not_the_batcher():
    def run(images):
        if images.max() > 0:
            raise RuntimeError("boom")
        return images

    async def main():
        batcher = _batcher(run)
        batcher.start()
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(np.ones((1, 2, 2)))
        ok = await batcher.submit(np.zeros((1, 2, 2)))
        await batcher.stop()
        return ok

    assert asyncio.run(main()).shape == (1, 2, 2)
