"""One deadline per call, enforced by one sweeper task instead of a timer per step.

Every FastAGI connection owns a :class:`Deadline`; its steps (reading the environment, the
store look-up, each AGI command) narrow it with :meth:`Deadline.limit`, which only moves a
number, and the :class:`DeadlineSweeper` cancels every task whose deadline has passed, once
per ``interval``. A step cut off that way raises :class:`TimeoutError` at its ``limit``, as
``asyncio.timeout`` would, so callers need not know which mechanism bounded them.

Why: ``asyncio.timeout`` arms and cancels one timer-heap entry per step; at several steps per
call and thousands of calls per second, that bookkeeping was a fifth of the event loop's
time. The price is precision: a step may overrun its limit by up to one ``interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.05


class Deadline:
    """When the current step of one task must be over (``time.monotonic()`` seconds)."""

    __slots__ = ("_task", "at", "fired")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self._task = task
        self.at = float("inf")  # steps narrow it
        self.fired = False

    def limit(self, seconds: float) -> _Step:
        """A step that must end within ``seconds`` (and within the enclosing limit)."""
        return _Step(self, seconds)

    def expire(self) -> None:
        """Cut the task off at its current await (the sweeper's job)."""
        if not self.fired:
            self.fired = True
            self._task.cancel()

    def _caught(self) -> bool:
        """Whether a CancelledError just seen came from this deadline (and is now spent)."""
        if not self.fired:
            return False
        self.fired = False
        # Someone else may also have cancelled the task (shutdown): that one must go on.
        return self._task.uncancel() == 0


class _Step:
    __slots__ = ("_deadline", "_saved", "_seconds")

    def __init__(self, deadline: Deadline, seconds: float) -> None:
        self._deadline = deadline
        self._seconds = seconds
        self._saved = 0.0

    def __enter__(self) -> Deadline:
        d = self._deadline
        self._saved = d.at
        d.at = min(d.at, time.monotonic() + self._seconds)
        return d

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        d = self._deadline
        d.at = self._saved
        if exc_type is asyncio.CancelledError and d._caught():
            raise TimeoutError(f"step exceeded its {self._seconds:g}s limit") from exc

    # ``async with`` too, so a step can stand where ``asyncio.timeout`` stood.
    async def __aenter__(self) -> Deadline:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


class DeadlineSweeper:
    """Watches the deadlines of live calls; cancels the overdue ones every ``interval``."""

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self._interval = interval
        self._live: set[Deadline] = set()
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> Deadline:
        """A deadline for the current task (none until a step sets one), watched until
        :meth:`release`."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        deadline = Deadline(task)
        self._live.add(deadline)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sweep(),
                                                                name="deadline-sweeper")
        return deadline

    def release(self, deadline: Deadline) -> None:
        self._live.discard(deadline)

    @property
    def watched(self) -> int:
        return len(self._live)

    async def _sweep(self) -> None:
        while self._live:
            await asyncio.sleep(self._interval)
            now = time.monotonic()
            for deadline in [d for d in self._live if d.at <= now]:
                deadline.expire()
        # Nothing to watch: the task ends and the next call starts a new one.

    async def close(self) -> None:
        self._live.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
