"""A binding's life after the reveal: issue (operators, batch), look up, switch the caller
(confirm dial), release, click-to-call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from routing.api_ports import CallerPort, CallOriginator, Principal
from routing.binding_views import BindingView, SwitchedBinding
from routing.errors import BindingNotActive, ClickToCallUnavailable, NotFound
from routing.extensions import NumberMode
from routing.reveal_ports import RevealBindings
from routing.shop_views import check_id
from routing.usecases.access import in_shop, owned
from routing.usecases.reveal import other_callers


@dataclass(frozen=True)
class CallerSwitch:
    switched: SwitchedBinding
    other_callers: tuple[str, ...]


@dataclass(frozen=True)
class ClickToCall:
    reference: str  # the AMI action id
    caller_a: str
    virtual_x: str


def require_active(view: BindingView, now: datetime) -> None:
    if not view.is_active(now):
        raise BindingNotActive(
            f"binding {view.binding_id} is {view.state.value}: reveal the order again")


class Bindings:
    def __init__(self, *, bindings: RevealBindings, callers: CallerPort,
                 originator: CallOriginator | None, ring_seconds: int) -> None:
        self._bindings = bindings
        self._callers = callers
        self._originator = originator
        self._ring_seconds = ring_seconds

    async def issue(self, who: Principal, *, shop_id: str, order_id: str, buyer_id: str,
                    caller_a: str, buyer_number: str, now: datetime,
                    ttl: timedelta | None = None, region: str | None = None,
                    mode: NumberMode | None = None) -> BindingView:
        """Issue X for an order with a given caller A (the same binding again while it is
        active: ``created`` is then False)."""
        in_shop(who, shop_id)
        order_id = check_id("order", order_id)
        buyer_id = check_id("buyer", buyer_id) if buyer_id else ""
        return await self._bindings.issue(shop_id, order_id, buyer_id, caller_a, buyer_number,
                                          now, ttl=ttl, preferred_region=region,
                                          actor=who.actor, mode=mode)

    async def get(self, who: Principal, binding_id: str, now: datetime) -> BindingView:
        if not binding_id.isalnum():
            raise NotFound("binding not found")
        view = await self._bindings.get(binding_id, now)
        owned(who, view.shop_id, "binding")
        return view

    async def switch_caller(self, who: Principal, binding_id: str, new_caller: str,
                            now: datetime) -> CallerSwitch:
        view = await self.get(who, binding_id, now)
        require_active(view, now)
        switched = await self._bindings.switch_caller(view.binding_id, new_caller,
                                                      actor=who.actor, now=now)
        callers = await self._callers.list_callers(view.shop_id)
        return CallerSwitch(switched, other_callers(callers, switched.binding.caller_a))

    async def release(self, who: Principal, binding_id: str, now: datetime) -> BindingView:
        view = await self.get(who, binding_id, now)
        return await self._bindings.release(view.binding_id, actor=who.actor, now=now)

    async def click_to_call(self, who: Principal, binding_id: str, now: datetime
                            ) -> ClickToCall:
        """Ring A; when A answers, the call enters the dialplan as A calling X."""
        view = await self.get(who, binding_id, now)
        require_active(view, now)
        if self._originator is None:
            raise ClickToCallUnavailable("click-to-call needs the AMI connection (ami.enabled)")
        reference = await self._originator.click_to_call(
            caller_a=view.caller_a, virtual_x=view.virtual_x, binding_id=view.binding_id,
            timeout_seconds=self._ring_seconds, extension=view.extension)
        return ClickToCall(reference=reference, caller_a=view.caller_a, virtual_x=view.virtual_x)
