"""``privnum accounts``: a shop's main account and the sub-accounts it maintains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from scripts.cli_output import Column, JsonOption, print_rows
from scripts.cli_support import operator, run, use_cases_of, utc_now

if TYPE_CHECKING:
    from routing.shop_views import AccountView

app = typer.Typer(no_args_is_help=True)

AsOpt = Annotated[str | None, typer.Option(
    "--as", help="Acting account (default: the shop's main account).")]


@app.command("add")
def add(
    ctx: typer.Context,
    shop_id: str,
    account_id: str,
    phone: Annotated[str, typer.Option(help="The staff member's phone.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    reviewed: Annotated[bool, typer.Option(
        "--reviewed", help="The phone has passed the platform's review.")] = False,
    actor: AsOpt = None,
) -> None:
    """Add a sub-account (only the shop's main account may)."""
    async def work() -> AccountView:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.add_sub_account(
                operator(acting_as=actor), shop_id, account_id, now=utc_now(), phone=phone,
                name=name, phone_reviewed=reviewed)

    acc = run(work)
    Console().print(f"sub-account {acc.id} added to shop {acc.shop_id} (phone {acc.phone}, "
                    f"{'reviewed' if acc.phone_reviewed else 'not reviewed'})", highlight=False)


@app.command("review")
def review(
    ctx: typer.Context,
    account_id: str,
    revoke: Annotated[bool, typer.Option("--revoke", help="Mark as not reviewed.")] = False,
    actor: Annotated[str, typer.Option("--actor", help="Reviewer (audit log).")] = "platform",
) -> None:
    """Record that an account's phone passed (or, with --revoke, no longer passes) review."""
    async def work() -> AccountView:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.review_phone(operator(actor), account_id, not revoke,
                                                  utc_now())

    acc = run(work)
    state = "reviewed" if acc.phone_reviewed else "not reviewed"
    Console().print(f"account {acc.id}: phone {state}", highlight=False)


@app.command("list")
def list_(ctx: typer.Context, shop_id: str, as_json: JsonOption = False) -> None:
    """List a shop's accounts, main account first."""
    async def work() -> list[AccountView]:
        async with use_cases_of(ctx) as cases:
            return await cases.shops.accounts(operator(), shop_id)

    print_rows([{"id": a.id, "role": a.role.value, "name": a.name, "phone": a.phone,
                 "phone_reviewed": a.phone_reviewed,
                 "reviewed": "yes" if a.phone_reviewed else "no"} for a in run(work)],
               [Column("id", "account"), Column("role", "role"), Column("name", "name"),
                Column("phone", "phone"), Column("reviewed", "reviewed")], as_json=as_json)
