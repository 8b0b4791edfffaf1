"""The checks a binding change makes inside its transaction: the shop is enabled, the caller
approved, the order's active binding, the row to change (locked on PostgreSQL). Each refusal
is its domain error."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store.models import Binding, CallerNumber, Shop
from routing.errors import CallerNotApproved, NotFound, ServiceNotEnabled
from routing.model import BindingState, CallerStatus, ServiceState

ACTIVE = BindingState.ACTIVE.value


async def issue_checks(s: AsyncSession, shop_id: str, caller_a: str, order_id: str
                       ) -> Binding | None:
    """``require_shop`` + ``require_caller`` + the order's active binding in ONE round trip
    (same checks, same order of errors)."""
    caller_status = (select(CallerNumber.status)
                     .where(CallerNumber.shop_id == shop_id, CallerNumber.number == caller_a)
                     .scalar_subquery())
    row = (await s.execute(
        select(Shop.service_state, caller_status.label("caller_status"), Binding)
        .select_from(Shop)
        .outerjoin(Binding, and_(Binding.shop_id == Shop.id, Binding.state == ACTIVE,
                                 Binding.order_id == order_id))
        .where(Shop.id == shop_id))).one_or_none()
    if row is None:
        raise NotFound(f"shop {shop_id} not found")
    if row.service_state != ServiceState.ENABLED.value:
        raise ServiceNotEnabled(f"privacy-number service is not enabled for shop {shop_id}")
    if row.caller_status != CallerStatus.APPROVED.value:
        raise CallerNotApproved(
            f"{caller_a} is not an approved caller number of shop {shop_id}"
            + ("" if row.caller_status is None else f" (status {row.caller_status})"))
    existing: Binding | None = row.Binding
    return existing


async def require_shop(s: AsyncSession, shop_id: str) -> None:
    state = (await s.execute(select(Shop.service_state).where(Shop.id == shop_id))
             ).scalar_one_or_none()
    if state is None:
        raise NotFound(f"shop {shop_id} not found")
    if state != ServiceState.ENABLED.value:
        raise ServiceNotEnabled(f"privacy-number service is not enabled for shop {shop_id}")


async def require_caller(s: AsyncSession, shop_id: str, number: str) -> None:
    status = (await s.execute(select(CallerNumber.status).where(
        CallerNumber.shop_id == shop_id, CallerNumber.number == number))
    ).scalar_one_or_none()
    if status != CallerStatus.APPROVED.value:
        raise CallerNotApproved(
            f"{number} is not an approved caller number of shop {shop_id}"
            + ("" if status is None else f" (status {status})"))


async def load_for_update(s: AsyncSession, binding_id: str) -> Binding:
    query = select(Binding).where(Binding.id == binding_id)
    if s.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await s.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"binding {binding_id} not found")
    return row
