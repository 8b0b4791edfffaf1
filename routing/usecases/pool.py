"""The virtual-number pool as the platform asks about it: the shipping-phone check and the
share of the pool in use."""

from __future__ import annotations

from datetime import datetime

from routing.api_ports import PoolPort, Principal
from routing.errors import InvalidNumber
from routing.extensions import without_extension
from routing.number_classes import NumberClasses
from routing.numbers import mask
from routing.usecases.access import platform_only


class Pool:
    def __init__(self, *, pool: PoolPort, classes: NumberClasses) -> None:
        self._pool = pool
        self._classes = classes

    async def is_virtual(self, number: str) -> tuple[str, bool]:
        """(E.164, whether it is or was one of our privacy numbers), e.g. to refuse it as a
        shipping phone."""
        # Privacy numbers include segments subscriber numbers never use (China's 700 numbers).
        e164 = self._classes.dialled(number)
        if e164 is not None and await self._pool.is_virtual_number(e164):
            return e164, True
        # Extension mode: X with an extension after it is still a privacy number.
        for head in without_extension(number):
            x = self._classes.dialled(head)
            if x is not None and await self._pool.is_virtual_number(x):
                return x, True
        if e164 is None:
            raise InvalidNumber(f"not a phone number: {mask(number)!r}")
        return e164, False

    async def utilisation(self, who: Principal | None, now: datetime) -> tuple[int, int]:
        """(numbers in an active binding, numbers in service); ``who`` None: the server's own
        metrics."""
        if who is not None:
            platform_only(who, "read the pool's utilisation")
        return await self._pool.utilisation(now)
