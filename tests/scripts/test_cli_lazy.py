"""Commands load lazily: ``privnum --help`` lists every command without importing one, and a
command imports its own module only. (Start-up time itself is measured by
``python -m bench cli_startup``, not asserted here.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import commands
from tests.scripts.cli_helpers import Cli

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "pydantic", "pydantic_settings", "fastapi", "uvicorn", "redis",
         "panoramisk", "alembic", "cryptography", "prometheus_client")

PROBE = """
import json, sys
from scripts.cli import main
sys.argv = ["privnum", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str, env: dict[str, str] | None = None) -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True,
                          text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", **(env or {})})
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_lists_every_command_and_imports_none() -> None:
    loaded = _modules_after("--help")
    ours = {m for m in loaded if m.startswith(("binding_store", "api", "agi"))}
    assert ours | ({e.module for e in commands.COMMANDS} & loaded) == set()
    assert not {m.split(".")[0] for m in loaded} & set(HEAVY)


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _modules_after("shop", "--help")
    assert "scripts.cli_shop" in loaded
    # cli_support and cli_output are what every command shares (settings, printing).
    assert not {m for m in loaded if m.startswith("scripts.cli_")} - {
        "scripts.cli_shop", "scripts.cli_support", "scripts.cli_output"}
    assert not {"fastapi", "uvicorn", "panoramisk"} & {m.split(".")[0] for m in loaded}


@pytest.mark.parametrize("entry", commands.COMMANDS, ids=lambda e: e.name)
def test_the_listed_line_is_the_commands_own_help(entry: commands.Entry,
                                                  tmp_path: Path) -> None:
    command = commands.load(entry)
    assert command.name == entry.name
    assert " ".join((command.help or "").split()).startswith(entry.help)
    usage = Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")(entry.name, "--help")
    assert usage.exit_code == 0 and f"privnum {entry.name}" in usage.stdout


def test_help_and_typos_still_answer(tmp_path: Path) -> None:
    cli = Cli(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    listing = cli.ok("--help")
    for entry in commands.COMMANDS:
        assert entry.name in listing
    typo = cli("shp")
    assert typo.exit_code == 2 and "Did you mean 'shop'" in typo.stderr


def test_rendering_the_dialplan_loads_its_contract_not_the_call_path(tmp_path: Path) -> None:
    """``asterisk render`` needs ``agi.channel_vars`` only: the FastAGI server, its sessions and
    the stores stay unloaded (``agi``'s own names load on first use)."""
    loaded = _modules_after("asterisk", "render", "--out", str(tmp_path / "conf"),
                            env={"PRIVNUM_AMI__SECRET": "s3cret-for-the-test",
                                 "PRIVNUM_DATA_DIR": str(tmp_path)})
    assert "agi.channel_vars" in loaded
    assert not {"agi.server", "agi.session", "agi.protocol", "agi.handlers"} & loaded
    assert not {"sqlalchemy", "redis", "cryptography", "binding_store"} & {
        m.split(".")[0] for m in loaded}
    assert (tmp_path / "conf" / "extensions.conf").is_file()


def test_the_agi_packages_names_still_resolve() -> None:
    import agi
    from agi.server import FastAgiServer

    assert agi.FastAgiServer is FastAgiServer
    assert {name: getattr(agi, name) for name in agi.__all__}  # every listed name loads
    with pytest.raises(AttributeError):
        _ = agi.NoSuchName  # type: ignore[attr-defined]


def test_the_call_path_alone_imports_no_other_front_door() -> None:
    """``privnum agi`` runs once per call: what it imports is its post-dial delay. The call
    path's module brings neither the HTTP API, nor the AMI listener, nor the background
    services that only ``serve`` starts."""
    done = subprocess.run(
        [sys.executable, "-c", "import json, sys, scripts.call_path; "
         "print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    loaded = set(json.loads(done.stdout))
    assert not {"fastapi", "uvicorn", "panoramisk"} & {m.split(".")[0] for m in loaded}
    assert not {"scripts.front_doors", "scripts.http_service", "scripts.background",
                "scripts.partition_service", "agi.ami_listener"} & loaded
