"""The call path on its own: the look-up, the batched attempt writer and the route handler
over one :class:`~scripts.container.Container`, and AGI-script mode (``privnum agi``), which
routes one call per process.

Apart from ``scripts.front_doors`` so that a one-call process imports only what a call needs:
``privnum agi`` runs once per call, and importing the HTTP API, the AMI listener and the
background services it never starts cost it about half its start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from signal import SIGHUP
from typing import TYPE_CHECKING

from agi.handlers import DecisionObserver, RouteHandler
from agi.script_mode import run_script_async
from binding_store import watermark
from binding_store.attempt_writer import AttemptWriter
from binding_store.route_lookup import StoreRouteLookup
from routing.errors import StoreUnavailable
from scripts.container import Container, open_container
from scripts.lifecycle import Lifecycle
from scripts.settings import Settings

if TYPE_CHECKING:
    from binding_store.index_healer import IndexHealer

log = logging.getLogger("privnum.serve")


@dataclass
class CallPath:
    """What answers calls: the look-up, the batched attempt writer, the handler."""

    lookup: StoreRouteLookup
    attempts: AttemptWriter
    handler: RouteHandler


async def prepare_stores(container: Container) -> None:
    """Before serving calls: a missing key file or schema stops us here, clearly; Redis down
    only warns (look-ups read SQL until it is back). The index learns SQL's watermark (what it
    must have applied to be trusted)."""
    container.cipher  # noqa: B018 - loads (and checks) the key file now
    await container.database.require_schema()
    mark = await watermark.read(container.database)
    if container.index is not None:
        container.index.known.learn(mark)
        try:
            await container.index.ping()
        except StoreUnavailable as exc:
            log.warning("redis index unavailable at start-up (%s); reading SQL", exc)


def call_path(container: Container, observe: DecisionObserver | None = None,
              on_refused: Callable[[int], None] | None = None,
              healer: IndexHealer | None = None) -> CallPath:
    """``on_refused`` counts call attempts the database refused; ``healer`` is woken by a
    look-up that finds the index behind or lost."""
    lookup = container.route_lookup(healer)
    attempts = AttemptWriter(container.database, on_refused=on_refused,
                             outbox=container.outbox)
    handler = RouteHandler(lookup, attempts, container.clock, container.route_options(), observe,
                           rules=container.call_rules, counter=container.call_counter,
                           extensions=container.extension_router())
    return CallPath(lookup, attempts, handler)


@asynccontextmanager
async def route_stack(settings: Settings, observe: DecisionObserver | None = None,
                      on_refused: Callable[[int], None] | None = None
                      ) -> AsyncIterator[CallPath]:
    """The call path on its own, for one call (``privnum agi``) or a benchmark server."""
    async with open_container(settings) as container:
        await prepare_stores(container)
        path = call_path(container, observe, on_refused)
        path.attempts.start()
        try:
            yield path
        finally:
            await path.attempts.close()


async def run_agi(settings: Settings) -> int:
    """``privnum agi``: route one call over stdin/stdout. Asterisk sends SIGHUP when the
    channel hangs up; until the session takes that signal over, it is ignored, so that it
    cannot kill us half-way through opening the store."""
    agi = settings.agi
    lifecycle = Lifecycle([], stop_signals=(), ignore_signals=(SIGHUP,))

    async def one_call() -> int:
        async with route_stack(settings) as stack:
            code = await run_script_async(
                stack.handler, sys.stdin, sys.stdout, env_timeout=agi.env_timeout_seconds,
                env_max_bytes=agi.env_max_bytes, command_timeout=agi.command_timeout_seconds,
                call_timeout=agi.call_timeout_seconds)
            # Let Asterisk go on with the dialplan now, not after the store has shut down.
            with contextlib.suppress(OSError):
                sys.stdout.flush()
                os.close(sys.stdout.fileno())
            return code

    return await lifecycle.run(one_call)
