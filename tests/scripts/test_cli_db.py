from __future__ import annotations

from binding_store import migrate
from tests.scripts.cli_helpers import Cli, one_line_error

DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/privnum"


def test_upgrade_check_current(cli: Cli) -> None:
    assert cli.ok("db", "current").strip() == "none"
    out = cli.ok("db", "upgrade")
    assert f"upgraded empty -> {migrate.head()}" in out
    assert "already at" in cli.ok("db", "upgrade")
    assert "no drift" in cli.ok("db", "check")
    assert cli.ok("db", "current").strip() == migrate.head()


def test_commands_before_upgrade_say_what_to_do(cli: Cli) -> None:
    one_line_error(cli("shop", "show"), "privnum db upgrade")
    one_line_error(cli("pool", "list"), "privnum db upgrade")
    one_line_error(cli("db", "check"), "privnum db upgrade")


def test_database_down_is_one_line(lite: Cli) -> None:
    env = {"PRIVNUM_DATABASE__URL": DOWN}
    one_line_error(lite("db", "upgrade", env=env), "database unavailable")
    one_line_error(lite("shop", "show", env=env), "database unavailable")
    one_line_error(lite("callers", "list", "s1", env=env), "database unavailable")


def test_bad_url_and_bad_settings_are_one_line(lite: Cli) -> None:
    one_line_error(lite("db", "upgrade", env={"PRIVNUM_DATABASE__URL": "nonsense"}),
                   "invalid database URL")
    one_line_error(lite("shop", "show", env={"PRIVNUM_DATABASE__URL": "nodriver://x/y"}),
                   "invalid database URL")
    one_line_error(lite("shop", "show", env={"PRIVNUM_DATABASE__TIMEOUT_SECONDS": "-1"}),
                   "invalid setting")
    one_line_error(lite("db", "upgrade", "--revision", "9999_nope"), "cannot upgrade")


def test_password_is_not_echoed(lite: Cli) -> None:
    url = "postgresql+psycopg://u:s3cret@127.0.0.1:1/db"
    line = one_line_error(lite("shop", "show", env={"PRIVNUM_DATABASE__URL": url}))
    assert "s3cret" not in line
