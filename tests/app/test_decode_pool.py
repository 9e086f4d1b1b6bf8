"""The decode pool: a batch is decoded in turns, so uploads queued meanwhile are not stuck behind it."""

import asyncio
import time

from app.decode_pool import DecodePool


def _order_beside_a_batch(slice_s: float) -> tuple[list, list]:
    """Run a 10-item batch and, once it has started, one other upload; the order they ran in."""
    order = []

    def decode(item):
        time.sleep(0.01)
        order.append(item)
        return item * 2

    async def scenario():
        pool = DecodePool(1)
        try:
            batch = asyncio.create_task(pool.map_in_slices(decode, list(range(10)), slice_s=slice_s))
            await asyncio.sleep(0.015)  # the batch holds the thread now
            await pool.run(order.append, "single")
            return await batch
        finally:
            pool.close()

    return asyncio.run(scenario()), order


def test_a_batch_gives_way_between_turns_and_keeps_its_order():
    results, order = _order_beside_a_batch(slice_s=0.0)  # one item per turn
    assert results == [i * 2 for i in range(10)]
    assert order.index("single") < 5  # it ran in the middle of the batch, not after it
    assert [item for item in order if item != "single"] == list(range(10))


def test_a_batch_of_quick_items_goes_in_one_turn():
    results, order = _order_beside_a_batch(slice_s=10.0)
    assert results == [i * 2 for i in range(10)]
    assert order[-1] == "single"  # one turn: the other upload waited for the whole batch
