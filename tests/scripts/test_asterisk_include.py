"""Include mode: `privnum asterisk render --mode include` writes only privnum's parts (every
name in them privnum's own) and says what the PBX must add; Debian's stock configuration with
those instructions carried out fits privnum (`privnum asterisk check`). The real Asterisk lab
loads the same (tests/e2e/test_include_mode.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.asterisk_include import apply, plan, set_value
from scripts.asterisk_read import AsteriskConfig
from scripts.asterisk_render import INCLUDE_FILES, REQUIRED_MODULES, RenderOptions, render
from tests.scripts.cli_helpers import Cli

ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT / "tests/fixtures/asterisk-debian-stock"
SECRET = {"PRIVNUM_AMI__SECRET": "s3cret-pass"}
PARTS = sorted(INCLUDE_FILES.values())


def test_include_mode_writes_privnums_parts_and_the_lines_to_add(lite: Cli,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "parts"
    done = lite("asterisk", "render", "--mode", "include", "--out", out, env=SECRET)
    assert done.exit_code == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == PARTS
    for top, part in INCLUDE_FILES.items():
        assert f"  {top}: #include {part}\n" in done.stdout
    assert "  cdr.conf [general] unanswered = yes\n" in done.stdout
    assert "  cdr_manager.conf [general] enabled = yes\n" in done.stdout
    assert "  asterisk.conf [options] systemname = privnum\n" in done.stdout
    assert " ".join(f"{m}.so" for m in REQUIRED_MODULES) in done.stdout
    assert (out / "manager_privnum.conf").stat().st_mode & 0o007 == 0  # holds the secret

    read = {p.name: AsteriskConfig.read(p) for p in out.iterdir()}
    # Every name privnum defines is its own: no PBX-wide section, no transport of its own.
    for config in read.values():
        for category in config.categories:
            assert str(category.name).startswith("privnum") or category.name == "mappings", (
                config.filename, category.name)
    pjsip = read["pjsip_privnum.conf"]
    assert pjsip.section_names == ["privnum-trunk"] * 3
    assert pjsip.values("privnum-trunk", "transport") == []
    assert read["manager_privnum.conf"].section_names == ["privnum"]

    # The same dialplan as a full render, contexts and steps alike.
    full = tmp_path / "full"
    render(RenderOptions(ami_secret="s3cret-pass"), full)
    whole = AsteriskConfig.read(full / "extensions.conf")
    ours = read["extensions_privnum.conf"]
    assert ours.section_names == [n for n in whole.section_names
                                  if n not in ("general", "globals")]
    for name in ours.section_names:
        assert [(s.exten, s.priority, s.app, s.data) for s in ours.dialplan(name)] == [
            (s.exten, s.priority, s.app, s.data) for s in whole.dialplan(name)], name


def test_with_transports_brings_privnums_own(lite: Cli, tmp_path: Path) -> None:
    out = tmp_path / "parts"
    assert lite("asterisk", "render", "--mode", "include", "--with-transports", "--out", out,
                env=SECRET).exit_code == 0
    pjsip = AsteriskConfig.read(out / "pjsip_privnum.conf")
    assert {"privnum-udp", "privnum-tcp"} <= set(pjsip.section_names)
    assert pjsip.values("privnum-trunk", "transport") == ["privnum-udp"]


def test_debian_stock_with_the_instructions_carried_out_fits(lite: Cli,
                                                             tmp_path: Path) -> None:
    etc = tmp_path / "asterisk"
    shutil.copytree(STOCK, etc)
    apply(plan(RenderOptions(ami_secret="s3cret-pass", own_transports=False)), etc)
    done = lite("asterisk", "check", etc, env=SECRET)
    assert done.exit_code == 0, done.stdout
    assert "ok: extensions.conf: privnum's part is there (via extensions_privnum.conf)" \
        in done.stdout
    # The stock files keep everything else: their own contexts and the manager.d include.
    stock = AsteriskConfig.read(etc / "extensions.conf")
    assert {"demo", "default", "public"} <= set(stock.section_names)
    assert AsteriskConfig.read(etc / "manager.conf").directives[0].argument == "manager.d/*.conf"


def test_a_pbx_context_with_privnums_name_is_a_collision(lite: Cli, tmp_path: Path) -> None:
    etc = tmp_path / "asterisk"
    shutil.copytree(STOCK, etc)
    with (etc / "extensions.conf").open("a", encoding="utf-8") as handle:
        handle.write("\n[privnum-inbound]\nexten => _X.,1,Hangup()\n")
    apply(plan(RenderOptions(ami_secret="s3cret-pass", own_transports=False)), etc)
    done = lite("asterisk", "check", etc, env=SECRET)
    assert done.exit_code == 1
    assert "problem: context privnum-inbound: defined by privnum at " \
        "extensions_privnum.conf:" in done.stdout
    assert "and by this PBX at extensions.conf:" in done.stdout


@pytest.mark.parametrize(("text", "expected"), [
    ("[general]\nenabled = no\n\n#include x.conf\n",
     "[general]\nenabled = yes\n\n#include x.conf\n"),
    ("[directories](!)\n[options]\n;systemname = x\n",
     "[directories](!)\n[options]\n;systemname = x\nsystemname = pbx\n"),
    ("; nothing\n", "; nothing\n\n[general]\nenabled = yes\n"),
])
def test_a_setting_lands_in_its_section(text: str, expected: str) -> None:
    key, value = ("systemname", "pbx") if "options" in text else ("enabled", "yes")
    section = "options" if "options" in text else "general"
    assert set_value(text, section, key, value) == expected
