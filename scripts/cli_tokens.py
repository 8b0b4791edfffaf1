"""``privnum tokens``: API bearer tokens (issue shows the secret once; only its hash is kept)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from scripts.cli_output import Column, JsonOption, print_rows
from scripts.cli_support import fail, operator, run, use_cases_of, utc_now

if TYPE_CHECKING:
    from routing.token_ports import IssuedToken, TokenView

app = typer.Typer(no_args_is_help=True)


@app.command("issue")
def issue(
    ctx: typer.Context,
    shop: Annotated[str | None, typer.Option("--shop", help="Shop of the account.")] = None,
    account: Annotated[str | None, typer.Option(
        "--account", help="Shop account (main or sub-account) the token acts as.")] = None,
    admin: Annotated[bool, typer.Option(
        "--platform", "--admin",
        help="The platform credential (every shop; --admin is its former name).")] = False,
    auditor: Annotated[list[str] | None, typer.Option(
        "--auditor", help="An auditor token reading this shop's calls (repeat for more).")
    ] = None,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    days: Annotated[int | None, typer.Option(
        "--days", min=1, help="Expire after this many days (default: never).")] = None,
) -> None:
    """Issue a token for --shop S --account A, --platform, or --auditor S [--auditor S2].
    Prints the secret once."""
    from routing.api_ports import PrincipalKind

    chosen = [bool(admin), bool(auditor), bool(shop or account)]
    if sum(chosen) != 1:
        fail("use exactly one of --platform, --auditor SHOP, or --shop with --account")
    if not admin and not auditor and not (shop and account):
        fail("an account token needs --shop and --account (or use --platform)")
    kind = (PrincipalKind.PLATFORM if admin else PrincipalKind.AUDITOR if auditor
            else PrincipalKind.ACCOUNT)

    async def work() -> IssuedToken:
        async with use_cases_of(ctx) as cases:
            return await cases.credentials.issue(operator(), now=utc_now(), kind=kind,
                                                 shop_id=shop, account_id=account,
                                                 shops=auditor or (), label=label, days=days)

    token = run(work)
    who = ("the platform" if token.kind is PrincipalKind.PLATFORM
           else f"an auditor of {', '.join(token.shops)}" if token.kind is PrincipalKind.AUDITOR
           else f"account {token.account_id} of shop {token.shop_id}")
    err = Console(stderr=True)
    err.print(f"token {token.token_id} issued for {who}; store it now, it is not shown again:",
              highlight=False)
    print(token.secret)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token: Annotated[str, typer.Argument(help="Token id (or the whole token).")],
) -> None:
    """Revoke a token at once (idempotent)."""
    async def work() -> None:
        async with use_cases_of(ctx) as cases:
            await cases.credentials.revoke(operator(), token, utc_now())

    run(work)
    Console().print("token revoked", highlight=False)


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    shop: Annotated[str | None, typer.Option("--shop", help="Only this shop's tokens.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List tokens (ids and owners; never secrets). Piped, the ids are printed whole."""
    async def work() -> list[TokenView]:
        async with use_cases_of(ctx) as cases:
            return await cases.credentials.list(operator(), shop)

    print_rows([{"id": t.token_id, "kind": t.kind.value, "shop": t.shop_id,
                 "account": t.account_id, "shops": ",".join(t.shops), "label": t.label,
                 "created": t.created_at, "revoked": t.revoked_at,
                 "state": "revoked" if t.revoked_at else "active"}
                for t in run(work)],
               [Column("id", "id"), Column("kind", "kind"), Column("shop", "shop"),
                Column("account", "account"), Column("grants", "shops"),
                Column("label", "label"),
                Column("created", "created"), Column("state", "state")], as_json=as_json)
