"""The per-call deadline and its sweeper (pure asyncio, no sockets)."""

from __future__ import annotations

import asyncio

import pytest

from agi.deadline import DeadlineSweeper


async def test_a_step_past_its_limit_raises_timeout_error() -> None:
    sweeper = DeadlineSweeper(interval=0.01)
    deadline = sweeper.watch()
    with pytest.raises(TimeoutError):
        async with deadline.limit(0.02):
            await asyncio.sleep(5)
    # The step's cancellation is spent: the task goes on and can await again.
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await asyncio.sleep(0)
    sweeper.release(deadline)
    await sweeper.close()


async def test_a_step_within_its_limit_returns_its_value_and_restores_the_outer_limit(
) -> None:
    sweeper = DeadlineSweeper(interval=0.01)
    deadline = sweeper.watch()
    async with deadline.limit(60):
        outer = deadline.at
        with deadline.limit(30):
            inner = deadline.at
            await asyncio.sleep(0.001)
        assert inner < outer
        assert deadline.at == outer
    sweeper.release(deadline)
    assert sweeper.watched == 0
    await sweeper.close()


async def test_an_inner_step_cannot_outlive_the_outer_one() -> None:
    sweeper = DeadlineSweeper(interval=0.01)
    deadline = sweeper.watch()
    with pytest.raises(TimeoutError):
        async with deadline.limit(0.02), deadline.limit(60):
            await asyncio.sleep(5)
    sweeper.release(deadline)
    await sweeper.close()


async def test_the_caught_timeout_lets_the_call_answer_afterwards() -> None:
    """A look-up cut off by its step; the same call still has time for its reject."""
    sweeper = DeadlineSweeper(interval=0.01)
    deadline = sweeper.watch()
    answered = False
    async with deadline.limit(60):
        try:
            async with deadline.limit(0.02):
                await asyncio.sleep(5)
        except TimeoutError:
            pass
        await asyncio.sleep(0.03)  # longer than the inner limit: nothing fires again
        answered = True
    assert answered
    sweeper.release(deadline)
    await sweeper.close()


async def test_a_foreign_cancellation_is_not_turned_into_a_timeout() -> None:
    sweeper = DeadlineSweeper(interval=0.01)
    started = asyncio.Event()

    async def call() -> None:
        deadline = sweeper.watch()
        try:
            async with deadline.limit(60):
                started.set()
                await asyncio.sleep(5)
        finally:
            sweeper.release(deadline)

    task = asyncio.create_task(call())
    await started.wait()
    task.cancel()  # shutdown, not the deadline
    with pytest.raises(asyncio.CancelledError):
        await task
    await sweeper.close()


async def test_many_calls_share_one_sweeper_and_only_the_late_ones_time_out() -> None:
    sweeper = DeadlineSweeper(interval=0.01)

    async def call(seconds: float) -> str:
        deadline = sweeper.watch()
        try:
            async with deadline.limit(0.05):
                await asyncio.sleep(seconds)
            return "done"
        except TimeoutError:
            return "timeout"
        finally:
            sweeper.release(deadline)

    results = await asyncio.gather(*(call(0 if i % 2 else 5) for i in range(20)))
    assert results == ["timeout", "done"] * 10
    assert sweeper.watched == 0
    await sweeper.close()
