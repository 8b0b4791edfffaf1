"""The group-commit queue (``Coalescer``) on its own: batches, answers, faults, liveness."""

from __future__ import annotations

import asyncio

import pytest

from binding_store.group_commit import Coalescer
from routing.errors import StoreUnavailable


class Recorder:
    """A ``run`` that answers each request doubled and remembers its batches."""

    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def __call__(self, batch: list[int]) -> list[int]:
        self.batches.append(list(batch))
        await asyncio.sleep(0)  # at the database
        if self.fail:
            raise StoreUnavailable("database unavailable: down")
        return [2 * r for r in batch]


@pytest.mark.parametrize("inflight", [1, 2])
async def test_a_request_sent_as_the_last_batch_is_answered_is_not_stranded(
        inflight: int) -> None:
    # The caller sends its next request in the same loop step in which its answer arrives,
    # while the flusher that answered is finishing: someone must still send it.
    run = Recorder()
    queue: Coalescer[int, int] = Coalescer(run, max_inflight=inflight)

    async def chain() -> list[int]:
        return [await queue.submit(i) for i in range(5)]

    async with asyncio.timeout(2):
        assert await chain() == [0, 2, 4, 6, 8]
    await queue.close()


async def test_requests_that_arrive_together_go_in_one_batch_each_with_its_answer() -> None:
    run = Recorder()
    queue: Coalescer[int, int] = Coalescer(run, max_batch=4, max_inflight=1)
    async with asyncio.timeout(2):
        got = await asyncio.gather(*(queue.submit(i) for i in range(10)))
    assert got == [2 * i for i in range(10)]
    assert [len(b) for b in run.batches] == [4, 4, 2]
    assert sorted(r for b in run.batches for r in b) == list(range(10))
    await queue.close()


async def test_a_failed_batch_fails_each_of_its_requests_and_the_next_one_is_sent() -> None:
    run = Recorder(fail=True)
    queue: Coalescer[int, int] = Coalescer(run, max_inflight=1)
    async with asyncio.timeout(2):
        results = await asyncio.gather(*(queue.submit(i) for i in range(3)),
                                       return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    run.fail = False
    async with asyncio.timeout(2):
        assert await queue.submit(7) == 14
    await queue.close()
