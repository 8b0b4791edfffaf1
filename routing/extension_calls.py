"""Calls to an extension number X: pure, synchronous, time passed in.

Merchant A dials X: the extension is asked for (unless it came with the dialled number),
then the call is decided as any other on the binding (X, extension). Buyer B dials X back:
straight to the shop when exactly one of B's active bindings is on X, else B is asked too.
Anyone else is asked too (whether the caller is A of a binding on X is only looked up with
the extension: the caller's number never goes to the store before, as it may be a buyer's);
a wrong extension is then refused like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.decide import decide
from routing.extensions import MAX_EXTENSION_TRIES, Entry, ExtensionStep, extension_step
from routing.model import CallContext, CallRequest, Direction, RouteDecision
from routing.reasons import Reason


@dataclass(frozen=True)
class CollectPrompts:
    """Sound files (``&``-joined, as Asterisk plays them) and the digit time-out."""

    first: str = "extension"
    again: str = "pbx-invalid"
    timeout_seconds: int = 5
    max_tries: int = MAX_EXTENSION_TRIES


@dataclass(frozen=True)
class Collect:
    """Ask for the extension: ``length`` digits, ``prompt``, ``timeout_seconds``."""

    virtual_x: str
    length: int
    prompt: str
    timeout_seconds: int


@dataclass(frozen=True)
class ExtensionOutcome:
    """Either a request to collect the extension, or the decision with the extension it is
    about ('' when none was entered)."""

    collect: Collect | None = None
    decision: RouteDecision | None = None
    extension: str = ""


def route_extension_call(
    request: CallRequest, *, x: str, length: int, entry: Entry | None, context: CallContext,
    now: datetime, max_seconds: int, prompts: CollectPrompts,
) -> ExtensionOutcome:
    """The next step of a call to extension number ``x``. ``context`` holds the caller's
    bindings on ``x`` (as A or as B; with an ``entry``, only those on its extension),
    recently ended ones included."""
    at_x = CallRequest(caller=request.caller, dialed=x, uniqueid=request.uniqueid,
                       linkedid=request.linkedid, channel=request.channel)
    if request.caller is None:
        return ExtensionOutcome(decision=RouteDecision.reject(Reason.NO_CALLER_ID, x))
    if entry is None:
        return _first_request(at_x, x, length, context, now, max_seconds, prompts)
    known = any(b.extension == entry.digits for b in context.bindings)
    step = extension_step(entry, length, known, prompts.max_tries)
    if step is ExtensionStep.ROUTE:
        mine = CallContext(True, tuple(b for b in context.bindings
                                       if b.extension == entry.digits))
        return ExtensionOutcome(decision=decide(at_x, mine, now, max_seconds),
                                extension=entry.digits)
    if step is ExtensionStep.COLLECT:
        prompt = prompts.again if entry.digits else prompts.first
        return ExtensionOutcome(collect=Collect(x, length, prompt, prompts.timeout_seconds))
    reason = (Reason.EXTENSION_INVALID if step is ExtensionStep.INVALID
              else Reason.EXTENSION_TIMEOUT)
    return ExtensionOutcome(decision=RouteDecision.reject(reason, x), extension=entry.digits)


def _first_request(request: CallRequest, x: str, length: int, context: CallContext,
                   now: datetime, max_seconds: int, prompts: CollectPrompts
                   ) -> ExtensionOutcome:
    """``context`` here may hold only the caller's bindings as a buyer (the store does not
    look the caller up as A before an extension is known): anyone else is asked."""
    active = [b for b in context.bindings if b.is_active(now)]
    merchant = [b for b in active if b.matched_as is Direction.MERCHANT]
    callbacks = {b.extension: b for b in active if b.matched_as is Direction.CALLBACK}
    if not merchant and len(callbacks) == 1:
        (extension, binding), = callbacks.items()
        only = CallContext(True, (binding,))
        return ExtensionOutcome(decision=decide(request, only, now, max_seconds),
                                extension=extension)
    return ExtensionOutcome(collect=Collect(x, length, prompts.first, prompts.timeout_seconds))
