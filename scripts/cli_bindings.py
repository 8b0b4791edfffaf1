"""``privnum bind``, ``privnum switch-caller``, ``privnum release``: top-level commands."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from scripts.cli_support import fail, operator, run, use_cases_of, utc_now

if TYPE_CHECKING:
    from routing.binding_views import BindingView

app = typer.Typer()


def _show(b: BindingView, headline: str) -> None:
    ext = f" ext. {b.extension}" if b.extension else ""
    typer.echo(f"{headline}: dial {b.virtual_x}{ext} from {b.caller_a} to reach "
               f"{b.buyer_masked} (order {b.order_id}, shop {b.shop_id})")
    typer.echo(f"  binding {b.binding_id}  state {b.state.value}  "
               f"expires {b.expires_at.isoformat(timespec='seconds')}")
    if b.extension:
        from routing.extensions import dial_string, display
        from routing.numbers import national

        typer.echo(f"  shown as {display(national(b.virtual_x), b.extension)}  "
                   f"dial string {dial_string(national(b.virtual_x), b.extension)}")


@app.command("bind")
def bind(
    ctx: typer.Context,
    shop: Annotated[str, typer.Option("--shop", help="Shop id.")],
    order: Annotated[str, typer.Option("--order", help="Order id.")],
    caller: Annotated[str, typer.Option("--caller", help="Approved caller number A.")],
    buyer: Annotated[str, typer.Option("--buyer", help="Buyer number B (never printed).")],
    buyer_id: Annotated[str, typer.Option("--buyer-id", help="Platform buyer id.")] = "",
    ttl: Annotated[int | None, typer.Option(
        "--ttl", help="Validity in seconds (default: bindings.ttl_seconds, min 60).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Preferred pool region.")] = None,
    mode: Annotated[str | None, typer.Option(
        "--mode", help="axb or extension (default: extensions.mode_policy).")] = None,
) -> None:
    """Issue a privacy number X for an order (the same one again while it is valid)."""
    if ttl is not None and ttl < 60:
        fail(f"--ttl must be at least 60 seconds, got {ttl}")
    from routing.extensions import NumberMode

    if mode is not None and mode not in {m.value for m in NumberMode}:
        fail(f"--mode must be axb or extension, got {mode!r}")
    wanted = None if mode is None else NumberMode(mode)

    async def work() -> None:
        async with use_cases_of(ctx) as cases:
            got = await cases.bindings.issue(
                operator(), shop_id=shop, order_id=order, buyer_id=buyer_id, caller_a=caller,
                buyer_number=buyer, now=utc_now(),
                ttl=None if ttl is None else timedelta(seconds=ttl), region=region,
                mode=wanted)
        _show(got, "issued" if got.created else "already issued")

    run(work)


@app.command("switch-caller")
def switch_caller(
    ctx: typer.Context,
    binding: Annotated[str, typer.Argument(help="Binding id.")],
    caller: Annotated[str, typer.Option("--caller", help="The new approved caller number.")],
) -> None:
    """Move a binding to another approved caller of the shop (keeps X when it can)."""

    async def work() -> None:
        async with use_cases_of(ctx) as cases:
            got = (await cases.bindings.switch_caller(operator(), binding, caller,
                                                      utc_now())).switched
        _show(got.binding, "switched, new X" if got.x_changed else "switched, same X")
        if got.binding.binding_id != got.previous.binding_id:
            typer.echo(f"  replaces binding {got.previous.binding_id}")

    run(work)


@app.command("release")
def release(
    ctx: typer.Context,
    binding: Annotated[str, typer.Argument(help="Binding id.")],
) -> None:
    """End a binding before its expiry."""

    async def work() -> None:
        async with use_cases_of(ctx) as cases:
            got = await cases.bindings.release(operator(), binding, utc_now())
        typer.echo(f"binding {got.binding_id}: {got.state.value}")

    run(work)
