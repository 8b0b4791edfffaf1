"""`privnum asterisk check`: an existing Asterisk configuration read with pyst2's parser, one
line per finding, exit 0 when it fits privnum and 1 when it does not. Run against privnum's
own rendered configuration, a broken copy of it, and Debian's stock configuration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scripts.asterisk_render import MODULES, REQUIRED_MODULES
from tests.scripts.cli_helpers import Cli

ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT / "tests/fixtures/asterisk-debian-stock"
LAB_STOCK = Path("/var/cache/privnum/lab/root/etc/asterisk.dist")  # the lab's package samples
SECRET = {"PRIVNUM_AMI__SECRET": "s3cret-pass"}


@pytest.fixture
def rendered(lite: Cli, tmp_path: Path) -> Path:
    out = tmp_path / "etc-asterisk"
    done = lite("asterisk", "render", "--out", out, env=SECRET)
    assert done.exit_code == 0, done.stderr
    return out


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_rendered_configuration_fits(lite: Cli, rendered: Path) -> None:
    done = lite("asterisk", "check", rendered, env=SECRET)
    assert done.exit_code == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines[-1] == f"{rendered}: fits privnum"
    assert all(line.startswith("ok: ") for line in lines[:-1]), lines
    assert "ok: AMI user privnum: read=cdr,system write=originate, exactly what privnum needs" \
        in lines


def test_a_broken_copy_names_every_problem(lite: Cli, rendered: Path) -> None:
    _edit(rendered / "modules.conf", "load => res_agi.so\n", "")
    _edit(rendered / "manager.conf", "read=cdr,system", "read=cdr,call")
    _edit(rendered / "asterisk.conf", "systemname = privnum", "systemname = pbx-east")
    _edit(rendered / "cdr_manager.conf", "enabled=yes", "enabled=no")
    _edit(rendered / "pjsip.conf", "[global]", "#include pjsip_missing.conf\n[global]")
    # The PBX's own file defines a context privnum uses.
    (rendered / "extensions.conf").write_text(
        (rendered / "extensions.conf").read_text() + "#include extensions_custom.conf\n")
    (rendered / "extensions_custom.conf").write_text(
        "; the admin's own dialplan\n[privnum-fail]\nexten => s,1,Hangup()\n")

    done = lite("asterisk", "check", rendered, env=SECRET)
    assert done.exit_code == 1
    out = done.stdout
    for expected in (
        "problem: modules.conf: res_agi.so is not loaded (autoload=no): add 'load => res_agi.so'",
        "problem: AMI user privnum (manager.conf:", "read=call,cdr is wider than privnum needs "
        "(read=cdr,system): remove call", "read lacks system",
        "problem: asterisk.conf systemname is 'pbx-east' but privnum expects 'privnum'",
        'set agi.system_name = "pbx-east"',
        "problem: cdr_manager.conf [general] enabled is no: privnum needs yes",
        "problem: pjsip.conf:", "#include pjsip_missing.conf: no such file",
        "problem: context privnum-fail: defined by privnum at extensions.conf:",
        "and by this PBX at extensions_custom.conf:2",
    ):
        assert expected in out, (expected, out)
    assert out.splitlines()[-1] == f"{rendered}: 7 problems"


def test_a_file_pyst2_cannot_parse_is_one_line(lite: Cli, rendered: Path) -> None:
    _edit(rendered / "extensions.conf", "[globals]\n", "[globals]\nnot an item\n")
    done = lite("asterisk", "check", rendered, env=SECRET)
    assert done.exit_code == 1
    assert "problem: extensions.conf:" in done.stdout
    assert "Item must be in name = value pairs" in done.stdout
    assert "Traceback" not in done.output


def _stock_dirs() -> list[Path]:
    return [STOCK, *([LAB_STOCK] if LAB_STOCK.is_dir() else [])]


@pytest.mark.parametrize("stock", _stock_dirs(), ids=lambda p: p.name)
def test_debian_stock_configuration_lacks_privnum(lite: Cli, stock: Path,
                                                  tmp_path: Path) -> None:
    etc = tmp_path / "asterisk"
    shutil.copytree(stock, etc)
    done = lite("asterisk", "check", etc, "--json", env=SECRET)
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    problems = [f["message"] for f in report["findings"] if not f["ok"]]
    fine = [f["message"] for f in report["findings"] if f["ok"]]
    for top, part in (("extensions.conf", "extensions_privnum.conf"),
                      ("pjsip.conf", "pjsip_privnum.conf"),
                      ("manager.conf", "manager_privnum.conf"),
                      ("cdr_manager.conf", "cdr_manager_privnum.conf"),
                      ("cdr_custom.conf", "cdr_custom_privnum.conf")):
        assert any(p.startswith(f"{top} lacks privnum's") and f"'#include {part}'" in p
                   for p in problems), (top, problems)
    assert any("systemname is '' but privnum expects 'privnum'" in p for p in problems)
    assert "cdr_manager.conf [general] enabled is no: privnum needs yes" in problems
    for key in ("unanswered", "congestion", "endbeforehexten"):  # unset: Asterisk's "no"
        assert f"cdr.conf [general] {key} is no, by default: privnum needs yes" in problems
    assert "modules.conf loads every module privnum needs (autoload=yes)" in fine
    assert any(m.startswith("no context, endpoint or AMI user of privnum's collides") for m in fine)
    assert report["problems"] == len(problems) == 10


def test_a_file_privnum_wrote_but_nobody_includes_is_named(lite: Cli, tmp_path: Path) -> None:
    etc = tmp_path / "asterisk"
    shutil.copytree(STOCK, etc)
    (etc / "manager_privnum.conf").write_text(
        "; privnum's AMI user -- rendered by privnum\n[privnum]\nsecret=s3cret-pass\n"
        "read=cdr,system\nwrite=originate\n")
    done = lite("asterisk", "check", etc, env=SECRET)
    assert ("problem: manager.conf does not include manager_privnum.conf: add the line "
            "'#include manager_privnum.conf' to manager.conf") in done.stdout


def test_a_missing_directory_is_one_finding(lite: Cli, tmp_path: Path) -> None:
    done = lite("asterisk", "check", tmp_path / "nope")
    assert done.exit_code == 1
    assert done.stdout.splitlines()[0] == f"problem: {tmp_path / 'nope'}: not a directory"


def test_the_modules_checked_are_the_ones_rendered() -> None:
    assert {f"{m}.so" for m in REQUIRED_MODULES} <= set(MODULES)
