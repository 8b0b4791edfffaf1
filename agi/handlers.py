"""The call-routing handler: AGI environment in, the routing variables out
(:func:`agi.answer.answer_commands`: one ``EXEC MSet``, plus a ``SET VARIABLE`` for the number
to dial on a bridge).

The daemon decides, the dialplan acts: this module never dials. Every fault becomes a
fail-closed reject (``routing_error``); the dialplan's own fail context covers the case where
even that cannot be sent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from agi import channel_vars as cv
from agi.answer import answer_commands
from agi.call_rules import rules_for_call, within_caps
from agi.caller_cache import CallerNumbers
from agi.errors import AgiError
from agi.extension_route import ExtensionRouter, collect_variables
from agi.session import AgiSession
from routing.call_caps import CallCounter
from routing.call_rules import CallRules, CallRulesSource
from routing.decide import decide
from routing.errors import PrivnumError
from routing.extension_calls import ExtensionOutcome
from routing.metrics_ports import MetricsSink
from routing.model import (
    Action,
    CallAttempt,
    CallContext,
    CallRequest,
    Direction,
    RouteDecision,
)
from routing.number_classes import DEFAULT_NUMBER_CLASSES, NumberClasses
from routing.numbers import mask, national
from routing.ports import AttemptRecorder, RouteLookup
from routing.reasons import Reason
from routing.recording import recording_id

log = logging.getLogger("privnum.route")

DecisionObserver = Callable[[RouteDecision, float], None]


def decision_observer(metrics: MetricsSink) -> DecisionObserver:
    """The handler's ``observe`` hook counting into ``metrics``: calls by outcome (reason
    code) and the AGI latency (``privnum serve`` hands in the API's registry, so ``/metrics``
    shows the call path)."""

    def observe(decision: RouteDecision, seconds: float) -> None:
        metrics.call_routed(decision.reason.value)
        metrics.agi_latency(seconds)

    return observe
_DIALED_CACHE = 100_000


@dataclass(frozen=True)
class RouteOptions:
    max_call_seconds: int = 3_600
    dial_format: str = "national"  # or "e164"
    region: str = "CN"
    store_timeout: float = 1.0
    system_name: str = ""
    warning_sound: str = "beep"  # the last-minute warning both parties hear
    notice_sound: str = "beep"  # the recording notice both parties hear
    # Look-ups in flight at once (0: no limit) and how long a call may queue for one. The
    # queue is part of the call's deadline but not of the store's: a burst on an embedded
    # store waits its turn instead of timing out inside a store that serialises anyway.
    max_concurrent_lookups: int = 0
    lookup_queue_seconds: float = 5.0
    # How a dialled X is read: segments such as China's 700 numbers are no subscriber numbers.
    number_classes: NumberClasses = DEFAULT_NUMBER_CLASSES
    # Distinct caller-ID texts whose parse is remembered (agi.caller_cache_size). 0 by
    # default: callers include buyers calling back, and their numbers stay out of any cache
    # (shops' own caller numbers are remembered apart: agi.caller_cache).
    caller_cache_size: int = 0


class RouteHandler:
    """``async def __call__(session)``: usable as a FastAGI route and in AGI-script mode."""

    def __init__(
        self,
        lookup: RouteLookup,
        recorder: AttemptRecorder | None,
        clock: Callable[[], datetime],
        options: RouteOptions,
        observe: DecisionObserver | None = None,
        *,
        rules: CallRulesSource | None = None,
        counter: CallCounter | None = None,
        extensions: ExtensionRouter | None = None,
    ) -> None:
        self._lookup = lookup
        self._rules = rules
        self._counter = counter
        self._extensions = extensions  # None: no extension numbers on this call path
        self._recorder = recorder
        self._clock = clock
        self._options = options
        self._observe = observe
        # Dialed numbers are the pool's X numbers (a bounded set) and are not personal data:
        # their E.164 form is remembered (parsing + validating costs ~40 us per number).
        self._dialed: dict[str, str | None] = {}
        # Recent callers' parses, in this process's memory only (agi.caller_cache): shops'
        # caller numbers always, anyone's with agi.caller_cache_size.
        self._callers = CallerNumbers(options.region, options.caller_cache_size)
        limit = options.max_concurrent_lookups
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None

    @property
    def callers(self) -> CallerNumbers:
        """The parsed callers this handler remembers (its counters show the hits)."""
        return self._callers

    async def __call__(self, session: AgiSession) -> None:
        started = time.perf_counter()
        now = self._clock()
        request = self.request_of(session)
        outcome = await self._extension_outcome(session, request, now)
        if outcome is not None and outcome.collect is not None:
            # Not a decision yet: the dialplan asks for the extension and comes back.
            for line in answer_commands(collect_variables(outcome.collect)):
                await session.command(line)
            return
        decision = (outcome.decision if outcome is not None and outcome.decision is not None
                    else await self._decide(session, request, now))
        if decision.direction is Direction.MERCHANT:  # the caller is a binding's A
            self._callers.remember_shop_line(session.env.get("agi_callerid"), request.caller)
        extension = outcome.extension if outcome is not None else ""
        try:
            for line in answer_commands(self.variables(decision, request, extension)):
                await session.command(line)
        finally:
            elapsed = time.perf_counter() - started
            self._log(request, decision, elapsed)
            if self._observe is not None:
                self._observe(decision, elapsed)
            # After the reply, so recording never adds to post-dial delay, and also when the
            # caller hung up meanwhile: the attempt happened. The CDR carries the same reason
            # (pn_reason), so a failed write here loses no call from the log.
            await self._record(session, request, decision, now, extension)

    def request_of(self, session: AgiSession) -> CallRequest:
        env = session.env
        linkedid = session.uniqueid
        if session.args and session.args[0]:
            # The dialplan passes ${CHANNEL(linkedid)}; anything else (a mis-written argument,
            # an assigned id holding a number) is not stored: the call's own id stands in.
            checked = session.environment.call_id(session.args[0])
            linkedid = checked or linkedid
            if checked is None:
                log.warning("call uniqueid=%s: linkedid argument is not an Asterisk id "
                            "(%d characters); using the uniqueid", session.uniqueid,
                            len(session.args[0]))
        if session.environment.uniqueid_refused:
            log.warning("call uniqueid=%s: agi_uniqueid is not an Asterisk id (%d characters); "
                        "stored and logged under this stand-in", session.uniqueid,
                        len(env.get("agi_uniqueid", "")))
        return CallRequest(
            caller=self._callers.normalize(env.get("agi_callerid")),
            dialed=self._normalize_dialed(env.get("agi_extension")),
            uniqueid=session.uniqueid,
            linkedid=linkedid,
            channel=env.get("agi_channel", ""),
        )

    def _normalize_dialed(self, raw: str | None) -> str | None:
        if raw is None:
            return None
        try:
            return self._dialed[raw]
        except KeyError:
            pass
        value = self._options.number_classes.dialled(raw)
        if len(self._dialed) >= _DIALED_CACHE:
            self._dialed.clear()  # bounded; a pool larger than the cache just parses more
        self._dialed[raw] = value
        return value

    async def _decide(self, session: AgiSession, request: CallRequest, now: datetime
                      ) -> RouteDecision:
        try:
            context = CallContext(x_in_pool=False)
            rules: Mapping[str, CallRules] | None = None
            if request.caller is not None and request.dialed is not None:
                context = await self._find(session, request.caller, request.dialed, now)
                if self._rules is not None and context.bindings:
                    # a fault reading them refuses the call below, never bridges past them
                    async with session.limit(self._options.store_timeout):
                        rules = await rules_for_call(self._rules, context)
            decision = decide(request, context, now, self._options.max_call_seconds, rules)
            if self._counter is not None:
                async with session.limit(self._options.store_timeout):
                    decision = await within_caps(self._counter, decision, context, rules)
            return decision
        except Exception as exc:  # fail closed on anything, including bugs
            log.warning("routing error for call %s: %s", request.uniqueid, _describe(exc))
            return RouteDecision.reject(Reason.ROUTING_ERROR, request.dialed or "")

    async def _find(self, session: AgiSession, caller: str, dialed: str, now: datetime
                    ) -> CallContext:
        slots = self._slots
        if slots is None:
            async with session.limit(self._options.store_timeout):
                return await self._lookup.find_for_call(caller, dialed, now)
        if slots.locked():
            async with session.limit(self._options.lookup_queue_seconds):
                await slots.acquire()
        else:
            await slots.acquire()  # free: no wait, no timer
        try:
            async with session.limit(self._options.store_timeout):
                return await self._lookup.find_for_call(caller, dialed, now)
        finally:
            slots.release()

    async def _extension_outcome(self, session: AgiSession, request: CallRequest,
                                 now: datetime) -> ExtensionOutcome | None:
        """The extension path's answer for a call to an extension number; ``None`` for any
        other call. Fails closed like :meth:`_decide`."""
        if self._extensions is None:
            return None
        try:
            async with session.limit(self._options.store_timeout):
                call = await self._extensions.recognise(session.env.get("agi_extension"),
                                                        request.dialed, list(session.args))
            if call is None:
                return None
            return await self._extensions.route(call, request, now,
                                                self._options.max_call_seconds)
        except Exception as exc:  # fail closed on anything, including bugs
            log.warning("extension routing error for call %s: %s", request.uniqueid,
                        _describe(exc))
            return ExtensionOutcome(decision=RouteDecision.reject(Reason.ROUTING_ERROR,
                                                                  request.dialed or ""))

    def variables(self, decision: RouteDecision, request: CallRequest, extension: str = ""
                  ) -> dict[str, str]:
        bridge = decision.action is Action.BRIDGE
        # Extension mode only: an AXB answer stays as it was (the dialplan cleared PRIVNUM_EXT).
        ext = {cv.EXT: extension} if extension else {}
        recorded = bridge and decision.record
        return {
            cv.ACTION: cv.ACTION_BRIDGE if bridge else cv.ACTION_REJECT,
            cv.DIAL_NUMBER: self._dialable(decision.dial_number) if bridge else "",
            cv.CALLERID: self._dialable(decision.present_number) if bridge else "",
            cv.CDR_CALLERID: self._recorded_caller(decision, request),
            cv.MAX_SECONDS: str(decision.max_seconds) if bridge else "0",
            cv.WARNING_SECONDS: str(decision.warning_seconds) if bridge else "0",
            cv.WARNING_REPEAT: str(decision.warning_repeat) if bridge else "0",
            cv.WARNING_SOUND: self._options.warning_sound if bridge else "",
            cv.RECORD: "1" if recorded else "0",
            # named here, not by the dialplan: the file's name is the id the CDR carries back
            cv.RECORD_ID: recording_id(secrets.token_hex(12)) if recorded else "",
            cv.NOTICE_SOUND: self._options.notice_sound if recorded else "",
            cv.BINDING: decision.binding_id,
            cv.SHOP: decision.shop_id,
            cv.ORDER: decision.order_id,
            cv.X: decision.virtual_x,
            cv.DIRECTION: decision.direction.value if decision.direction else "",
            cv.REASON: decision.reason.value,
            cv.PROMPT: decision.prompt,
            cv.HANGUP_CAUSE: "" if bridge else str(decision.reason.hangup_cause),
            **ext,
        }

    def _recorded_caller(self, decision: RouteDecision, request: CallRequest) -> str:
        """The caller as CDRs may show it: plain only when it is the binding's own caller
        number A (shop staff); anyone else may be a buyer."""
        if request.caller is None:
            return ""
        if decision.direction is Direction.MERCHANT:
            return self._dialable(request.caller)
        return mask(request.caller)

    def _dialable(self, e164: str) -> str:
        if not e164:
            return ""
        return national(e164) if self._options.dial_format == "national" else e164

    async def _record(self, session: AgiSession, request: CallRequest, decision: RouteDecision,
                      now: datetime, extension: str = "") -> None:
        if self._recorder is None:
            return
        caller_a = ""
        if decision.direction is Direction.MERCHANT:
            caller_a = request.caller or ""
        elif decision.direction is Direction.CALLBACK and decision.action is Action.BRIDGE:
            caller_a = decision.dial_number
        attempt = CallAttempt(
            uniqueid=request.uniqueid,
            linkedid=request.linkedid,
            at=now,
            caller_masked=mask(request.caller) if request.caller else "",
            caller_a=caller_a,
            virtual_x=decision.virtual_x,
            action=decision.action,
            reason=decision.reason,
            direction=decision.direction,
            binding_id=decision.binding_id,
            shop_id=decision.shop_id,
            order_id=decision.order_id,
            system_name=self._options.system_name,
            mark=decision.mark,
            extension=extension or None,
        )
        try:
            async with session.limit(self._options.store_timeout):
                await self._recorder.record(attempt)
        except Exception as exc:
            log.warning("call attempt %s not recorded: %s", request.uniqueid, _describe(exc))

    def _log(self, request: CallRequest, decision: RouteDecision, elapsed: float) -> None:
        if not log.isEnabledFor(logging.INFO):
            return  # skip masking and formatting when the line would be dropped anyway
        log.info(
            "call uniqueid=%s caller=%s x=%s action=%s reason=%s direction=%s binding=%s "
            "ms=%.2f",
            request.uniqueid,
            mask(request.caller) if request.caller else "-",
            request.dialed or "-",
            decision.action.value,
            decision.reason.value,
            decision.direction.value if decision.direction else "-",
            decision.binding_id or "-",
            elapsed * 1000,
        )


def _describe(exc: BaseException) -> str:
    # Texts of our own errors carry masked numbers only; a foreign one might hold anything.
    if isinstance(exc, AgiError | TimeoutError | PrivnumError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__
