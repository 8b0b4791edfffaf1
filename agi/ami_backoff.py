"""Reconnecting to AMI politely: exponential back-off with jitter, and one log line per change
of state (down once, back up once) instead of one per attempt.

Why jitter: after an Asterisk restart every privnum process (``serve``, ``ami listen``, the
API's originate connection) reconnects; spread out, they do not knock at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable


class Backoff:
    """Delays ``initial``, ``2*initial``, ``4*initial`` ... capped at ``cap`` (a cap below
    ``initial`` counts as ``initial``), each drawn from the upper half of its step: never below
    half the step, never above the cap."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        if initial <= 0:
            raise ValueError("back-off needs a positive initial delay")
        self.initial = initial
        self.cap = max(cap, initial)
        self._rng = rng or random.Random()
        self._step = initial

    def next(self) -> float:
        step = self._step
        self._step = min(self.cap, self._step * 2)
        return step * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        """After a connection that worked: start again from ``initial``."""
        self._step = self.initial


class LinkState:
    """Logs the transitions of one connection: the first failure or the loss (warning), the
    way back (info); the failed attempts in between only at DEBUG."""

    def __init__(self, name: str, logger: logging.Logger,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._log = logger
        self._clock = clock
        self._down_since: float | None = None
        self._ever_up = False
        self.failed_attempts = 0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, why: str) -> None:
        """An attempt to connect failed."""
        self.failed_attempts += 1
        if self._down_since is None:
            self._down_since = self._clock()
            self._log.warning("AMI %s not available: %s; retrying with back-off (logged again "
                              "when it is back)", self.name, why)
        else:
            self._log.debug("AMI %s still not available: %s", self.name, why)

    def lost(self, why: str) -> None:
        """An established connection went away."""
        if self._down_since is None:
            self._down_since = self._clock()
            self._log.warning("AMI connection to %s lost (%s); reconnecting with back-off",
                              self.name, why)

    def up(self) -> None:
        if self._down_since is not None and self._ever_up:
            self._log.info("AMI connected to %s again after %d failed attempt(s), %.0f s down",
                           self.name, self.failed_attempts, self._clock() - self._down_since)
        elif self._down_since is not None:
            self._log.info("AMI connected to %s after %d failed attempt(s)", self.name,
                           self.failed_attempts)
        else:
            self._log.info("AMI connected to %s", self.name)
        self._down_since = None
        self._ever_up = True
        self.failed_attempts = 0
