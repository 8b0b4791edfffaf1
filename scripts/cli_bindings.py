"""``privnum bind``, ``privnum switch-caller``, ``privnum release``: top-level commands."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from routing.errors import InvalidInput
from scripts.cli_output import (
    Column,
    ExitCode,
    JsonOption,
    print_json,
    print_rows,
    progress,
)
from scripts.cli_support import USAGE_EXIT, fail, operator, run, use_cases_of, utc_now

if TYPE_CHECKING:
    from routing.binding_views import BindingView

app = typer.Typer()


def _machine(b: BindingView) -> dict[str, Any]:
    """The binding for scripts; an extension binding with its display form and dial string
    (as the API gives them)."""
    from dataclasses import asdict

    from routing.extensions import dial_string, display
    from routing.numbers import national

    out = asdict(b)
    if b.extension:
        local = national(b.virtual_x)
        out |= {"display": display(local, b.extension),
                "dial_string": dial_string(local, b.extension)}
    return out


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
    shop: Annotated[str | None, typer.Option(
        "--shop", help="Shop id (with --file: for rows without a shop column).")] = None,
    order: Annotated[str | None, typer.Option("--order", help="Order id.")] = None,
    caller: Annotated[str | None, typer.Option(
        "--caller", help="Approved caller number A.")] = None,
    buyer: Annotated[str | None, typer.Option(
        "--buyer", help="Buyer number B (never printed).")] = None,
    buyer_id: Annotated[str, typer.Option("--buyer-id", help="Platform buyer id.")] = "",
    ttl: Annotated[int | None, typer.Option(
        "--ttl", help="Validity in seconds (default: bindings.ttl_seconds, min 60).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Preferred pool region.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="CSV of orders with a header: order,caller,buyer[,shop,buyer_id,ttl,"
        "region]; one result per row (exit 3 when any row was refused).")] = None,
    concurrency: Annotated[int, typer.Option(
        "--concurrency", min=1, max=1000, help="With --file: rows issued at once.")] = 64,
    as_json: JsonOption = False,
    mode: Annotated[str | None, typer.Option(
        "--mode", help="axb or extension (default: extensions.mode_policy).")] = None,
) -> None:
    """Issue a privacy number X for an order (the same one again while it is valid), or for
    every order of a CSV file (--file)."""
    if file is not None:
        if order or caller or buyer or buyer_id or ttl is not None or region:
            fail("--file takes the orders from the file: give --order/--caller/--buyer/"
                 "--buyer-id/--ttl/--region as its columns instead", USAGE_EXIT)
        bind_file(ctx, file, shop, concurrency, as_json)
        return
    missing = [name for name, value in (("--shop", shop), ("--order", order),
                                         ("--caller", caller), ("--buyer", buyer)) if not value]
    if missing:
        fail(f"missing {', '.join(missing)} (or --file for many orders)", USAGE_EXIT)
    assert shop and order and caller and buyer
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
        if as_json:
            print_json(_machine(got))
        else:
            _show(got, "issued" if got.created else "already issued")

    run(work)


def bind_file(ctx: typer.Context, file: Path, shop: str | None, concurrency: int,
              as_json: bool) -> None:
    from scripts.cli_bind_file import issue_all, read_orders

    try:
        rows = read_orders(file, shop)
    except InvalidInput as exc:
        fail(str(exc))

    async def work() -> list[dict[str, Any]]:
        async with use_cases_of(ctx) as cases:
            with progress("binding", len(rows), unit="orders") as advance:
                return await issue_all(cases, rows, who=operator(), now=utc_now,
                                       concurrency=concurrency, advance=advance)

    results = run(work)
    issued = sum(1 for r in results if r["outcome"] == "issued")
    existing = sum(1 for r in results if r["outcome"] == "existing")
    refused = len(results) - issued - existing
    if as_json:
        print_json({"issued": issued, "existing": existing, "refused": refused,
                    "rows": results})
    else:
        print_rows(results, [Column("line", "line"), Column("shop", "shop"),
                             Column("order", "order"), Column("outcome", "outcome"),
                             Column("virtual_x", "X"), Column("extension", "ext."),
                             Column("caller_a", "A"),
                             Column("buyer", "buyer"), Column("binding_id", "binding"),
                             Column("expires_at", "expires"), Column("message", "message")],
                   as_json=False)
        typer.echo(f"{issued} issued, {existing} already issued, {refused} refused", err=True)
    if refused:
        raise typer.Exit(ExitCode.PARTIAL)


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
