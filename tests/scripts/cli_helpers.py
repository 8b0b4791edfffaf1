"""Running the real ``privnum`` command in-process (typer's CliRunner), with a data dir and
database URL of the test's own (no tests here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from click.testing import Result
from typer.testing import CliRunner


def privnum_app() -> typer.Typer:
    from scripts import cli

    return cli.app


@dataclass
class Cli:
    data_dir: Path
    database_url: str

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "keys.json"

    def env(self) -> dict[str, str | None]:
        return {"PRIVNUM_DATA_DIR": str(self.data_dir),
                "PRIVNUM_DATABASE__URL": self.database_url,
                "PRIVNUM_CONFIG": None, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}

    def __call__(self, *args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(privnum_app(), [str(a) for a in args],
                                  env={**self.env(), **(env or {})}, catch_exceptions=False)

    def ok(self, *args: str | Path) -> str:
        result = self(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout


def one_line_error(result: Result, *expected: str, code: int = 1) -> str:
    """The command failed with exit ``code`` and exactly one line on stderr, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


__all__: Sequence[str] = ["Cli", "one_line_error", "privnum_app", "write"]
