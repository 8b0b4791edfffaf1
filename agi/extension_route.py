"""The call path for extension numbers: recognise a call to an extension X (dialled alone,
or immediately followed by its extension), read what the dialplan collected from the AGI
arguments, and ask ``routing.extension_calls`` for the next step.

Plugged into ``agi.handlers.RouteHandler`` (``extensions=``); a call to any other number is
not touched (``None``: the AXB path decides).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from agi import channel_vars as cv
from routing.extension_calls import (
    Collect,
    CollectPrompts,
    ExtensionOutcome,
    route_extension_call,
)
from routing.extension_ports import ExtensionCallLookup, ExtensionNumbers
from routing.extensions import Entry, split_dialled
from routing.model import CallContext, CallRequest
from routing.numbers import national


@dataclass(frozen=True)
class ExtensionCall:
    """A call to extension number ``x``; ``entry``: what was entered or dialled after X."""

    x: str
    length: int
    entry: Entry | None


def entry_of(args: list[str], max_tries: int) -> Entry | None:
    """AGI arguments 2 and 3 (the collected digits, the try number); ``None`` before the
    first prompt. A try number that is no small positive integer counts as the last try
    (fail closed: no endless asking)."""
    if len(args) < 3 or not args[2]:
        return None
    attempt = int(args[2]) if args[2].isdigit() and 0 < int(args[2]) < 100 else max_tries
    return Entry(digits=args[1] if args[1].isdigit() else "", attempt=attempt)


def dialled_forms(lengths: Mapping[str, int]) -> dict[str, tuple[str, int]]:
    """Each extension X as a carrier may deliver it (E.164, without '+', national) -> (X,
    length)."""
    forms: dict[str, tuple[str, int]] = {}
    for x, length in lengths.items():
        for form in (x, x.lstrip("+"), national(x)):
            forms[form] = (x, length)
    return forms


class ExtensionRouter:
    def __init__(self, numbers: ExtensionNumbers, lookup: ExtensionCallLookup, *,
                 prompts: CollectPrompts, store_timeout: float) -> None:
        self._numbers = numbers
        self._lookup = lookup
        self.prompts = prompts
        self._timeout = store_timeout

    async def recognise(self, raw_dialled: str | None, dialled: str | None, args: list[str]
                        ) -> ExtensionCall | None:
        """The call to an extension X this is, or ``None`` (not an extension number).

        The caller bounds it (the handler: by the call's deadline, ``store_timeout``): on
        every call, extension number or not, and the numbers are read from a cache nearly
        always, so a timer of its own here would cost every call more than the read."""
        lengths = await self._numbers.lengths()
        if not lengths:
            return None
        if dialled is not None and dialled in lengths:
            return ExtensionCall(dialled, lengths[dialled],
                                 entry_of(args, self.prompts.max_tries))
        if not raw_dialled:
            return None
        forms = dialled_forms(lengths)
        split = split_dialled(raw_dialled, {form: n for form, (_, n) in forms.items()})
        if split is None:
            return None
        head, digits = split
        x, length = forms[head]
        # Delivered with the number: one try, no prompt.
        return ExtensionCall(x, length, Entry(digits, attempt=self.prompts.max_tries))

    async def route(self, call: ExtensionCall, request: CallRequest, now: datetime,
                    max_seconds: int) -> ExtensionOutcome:
        context = None
        if request.caller is not None:
            ext = None
            if call.entry is not None:
                ext = call.entry.digits if len(call.entry.digits) == call.length else "-"
            async with asyncio.timeout(self._timeout):
                context = await self._lookup.find_extension_call(request.caller, call.x, ext,
                                                                 now)
        return route_extension_call(
            request, x=call.x, length=call.length, entry=call.entry,
            context=context or CallContext(True), now=now, max_seconds=max_seconds,
            prompts=self.prompts)


def collect_variables(collect: Collect) -> dict[str, str]:
    """The answer asking the dialplan to collect the extension (every other variable empty,
    as the dialplan cleared them)."""
    return {
        cv.ACTION: cv.ACTION_COLLECT,
        cv.X: collect.virtual_x,
        cv.EXT_LENGTH: str(collect.length),
        cv.EXT_PROMPT: collect.prompt,
        cv.EXT_TIMEOUT: str(collect.timeout_seconds),
    }
