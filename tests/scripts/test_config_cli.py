"""Operating privnum's settings: `privnum config sample` (generated from the settings model, so
it loads back), `privnum config show` (values in effect, their source, secrets masked),
warnings for unknown PRIVNUM_* variables, errors naming their true source, `--version`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from scripts.settings import Settings, load_settings
from scripts.settings_sources import leaves
from tests.scripts.cli_helpers import Cli, one_line_error, write

UNCOMMENT = re.compile(r"^# (\[[a-z_.A-Z]+\]|[a-z_]+ = .*)$")


def _defaults(tmp_path: Path) -> dict[str, object]:
    return load_settings(data_dir=tmp_path).model_dump(mode="json")


def test_the_sample_loads_back_as_the_defaults(lite: Cli, tmp_path: Path) -> None:
    text = lite.ok("config", "sample")
    for leaf in leaves(Settings):
        assert f"env {leaf.env}" in text or f"Environment: {leaf.env}" in text, leaf.key
    as_is = write(tmp_path / "as-is.toml", text)
    assert load_settings(as_is, data_dir=tmp_path).model_dump(mode="json") == _defaults(tmp_path)

    # Every key uncommented: still the defaults, but for the keys marked as an example.
    lines = [UNCOMMENT.sub(r"\1", line) for line in text.splitlines()]
    everything = write(tmp_path / "all.toml", "\n".join(lines) + "\n")
    loaded = load_settings(everything, data_dir=tmp_path).model_dump(mode="json")
    expected = _defaults(tmp_path)
    section: dict[str, object] = expected
    examples = 0
    for line in lines:
        if line.startswith("["):
            section = expected[line.strip("[]").split(".")[0]]  # type: ignore[assignment]
        elif "  # example" in line and not line.startswith("#"):
            key = line.split(" = ")[0]
            where = loaded if section is expected else loaded[next(
                k for k, v in expected.items() if v is section)]
            assert where[key] not in (None, []), line
            section[key] = where[key]
            examples += 1
    assert examples >= 5
    assert loaded == expected


def test_show_names_every_source_and_masks_secrets(lite: Cli, tmp_path: Path) -> None:
    config = write(tmp_path / "privnum.toml",
                   '[agi]\nport = 4600\n[ami]\nsecret = "hush-hush-42"\n'
                   '[redis]\nurl = "redis://:pw-777@127.0.0.1:6379/0"\n')
    shown = lite("--config", config, "config", "show", "--json",
                 env={"PRIVNUM_API__PORT": "8181"})
    assert shown.exit_code == 0, shown.stderr
    assert "hush-hush-42" not in shown.stdout and "pw-777" not in shown.stdout
    report = json.loads(shown.stdout)
    rows = {r["key"]: r for r in report["settings"]}
    assert report["config_file"] == str(config)
    assert rows["agi.port"] == {"key": "agi.port", "value": 4600, "source": "file",
                                "variable": None}
    assert rows["api.port"] == {"key": "api.port", "value": 8181, "source": "env",
                                "variable": "PRIVNUM_API__PORT"}
    assert rows["ami.secret"]["value"] == "****"
    assert rows["redis.url"]["value"] == "redis://:****@127.0.0.1:6379/0"
    assert rows["agi.host"]["source"] == "default"
    assert {r["key"] for r in report["settings"]} == {leaf.key for leaf in leaves(Settings)}

    table = lite("--config", config, "config", "show", env={"PRIVNUM_API__PORT": "8181"})
    assert re.search(r"^api\.port +env PRIVNUM_API__PORT +8181$", table.stdout, re.M)
    assert re.search(r"^agi\.port +file +4600$", table.stdout, re.M)
    assert "hush-hush-42" not in table.stdout


def test_an_unknown_privnum_variable_is_a_warning_with_a_hint(lite: Cli) -> None:
    done = lite("config", "show", env={"PRIVNUM_AGI__PORTT": "4600"})
    assert done.exit_code == 0
    assert done.stderr.strip() == ("warning: environment variable PRIVNUM_AGI__PORTT is no "
                                   "setting and is ignored (did you mean PRIVNUM_AGI__PORT?)")


@pytest.mark.parametrize(
    ("file", "env", "expected"),
    [
        ("[agi]\nport = \"x\"\n", {}, "invalid setting agi.port: Input should be a valid "
         "integer, unable to parse string as an integer (in config file "),
        ("", {"PRIVNUM_AGI__PORT": "x"}, "invalid setting agi.port: Input should be a valid "
         "integer, unable to parse string as an integer (env PRIVNUM_AGI__PORT)"),
        # The environment beats the file: a bad env value is blamed on the env only.
        ("[agi]\nport = 4600\n", {"PRIVNUM_AGI__PORT": "0"}, "(env PRIVNUM_AGI__PORT)"),
        ("[agi]\nportt = 4600\n", {}, "unknown setting agi.portt (did you mean agi.port?) in "
         "config file "),
        ("", {"PRIVNUM_DATABASE__URL": "mysql://root@db/shop"},
         "invalid setting database.url: invalid database URL: 'mysql' is not supported "
         "(privnum runs on sqlite+aiosqlite:///PATH or postgresql+psycopg://USER@HOST/DB) "
         "(env PRIVNUM_DATABASE__URL)"),
        ("[database]\nurl = \"postgresql://privnum@db/privnum\"\n",
         {"PRIVNUM_DATABASE__URL": None},
         "use postgresql+psycopg://... (the driver privnum ships with), not postgresql://"),
        ("", {"PRIVNUM_POOL__NUMBER_CLASSES": "{CN: 1}"},
         "environment variable PRIVNUM_POOL__NUMBER_CLASSES: not valid JSON"),
        ("", {"PRIVNUM_AMI__CDR_TIMEZONE": "Mars/Olympus"},
         "invalid setting ami.cdr_timezone: unknown time zone 'Mars/Olympus'"),
    ],
)
def test_a_bad_setting_names_its_true_source(lite: Cli, tmp_path: Path, file: str,
                                             env: dict[str, str | None], expected: str) -> None:
    config = write(tmp_path / "privnum.toml", file)
    line = one_line_error(lite("--config", config, "config", "show", env=env), expected)
    if "config file" in expected:
        assert str(config) in line


def test_version_is_the_installed_package(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "scripts.cli", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert done.stdout == f"privnum {version('privnum')}\n"


def test_a_data_dir_that_cannot_be_made_is_one_line(lite: Cli) -> None:
    env = {"PRIVNUM_DATA_DIR": "/proc/privnum-nope", "PRIVNUM_DATABASE__URL": None}
    for args in (("db", "upgrade"), ("shop", "show")):
        one_line_error(lite(*args, env=env), "cannot create the SQLite database's directory")
