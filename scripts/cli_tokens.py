"""``privnum tokens``: API bearer tokens (issue shows the secret once; only its hash is kept)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from binding_store.tokens import TokenStore
from routing.api_ports import IssuedToken
from scripts.cli_support import fail, run, settings_of
from scripts.wiring import open_database, utc_now

app = typer.Typer(no_args_is_help=True)


@app.command("issue")
def issue(
    ctx: typer.Context,
    shop: Annotated[str | None, typer.Option("--shop", help="Shop of the account.")] = None,
    account: Annotated[str | None, typer.Option(
        "--account", help="Shop account (main or sub-account) the token acts as.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A platform admin token.")] = False,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    days: Annotated[int | None, typer.Option(
        "--days", min=1, help="Expire after this many days (default: never).")] = None,
) -> None:
    """Issue a token for --shop S --account A, or --admin. Prints the secret once."""
    if admin and (shop or account):
        fail("use either --admin or --shop with --account")
    if not admin and not (shop and account):
        fail("an account token needs --shop and --account (or use --admin)")

    async def work() -> IssuedToken:
        async with open_database(settings_of(ctx)) as db:
            now = utc_now()
            expires = now + timedelta(days=days) if days else None
            return await TokenStore(db).issue(now=now, admin=admin, shop_id=shop,
                                              account_id=account, label=label,
                                              expires_at=expires)

    token = run(work)
    who = "platform admin" if admin else f"account {token.account_id} of shop {token.shop_id}"
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
        async with open_database(settings_of(ctx)) as db:
            await TokenStore(db).revoke(token, now=utc_now())

    run(work)
    Console().print("token revoked", highlight=False)


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    shop: Annotated[str | None, typer.Option("--shop", help="Only this shop's tokens.")] = None,
) -> None:
    """List tokens (ids and owners; never secrets)."""
    async def work() -> list[dict[str, object]]:
        async with open_database(settings_of(ctx)) as db:
            return await TokenStore(db).list(shop)

    table = Table("id", "kind", "shop", "account", "label", "created", "state")
    for row in run(work):
        state = "revoked" if row["revoked_at"] else "active"
        table.add_row(*(str(row[k] or "") for k in ("id", "kind", "shop", "account", "label",
                                                    "created_at")), state)
    Console().print(table)
