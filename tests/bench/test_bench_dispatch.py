"""``python -m bench`` dispatch: flags reach modules that take argv; other engineers' scripts
(``main()`` without parameters, possibly a coroutine function) run without our flags."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

import pytest

import bench.__main__ as dispatch
from bench.__main__ import run_main


def test_flags_reach_a_main_taking_argv() -> None:
    seen: list[list[str]] = []
    module = ModuleType("bench.fake_argv")

    def main(argv: list[str]) -> None:
        seen.append(argv)

    module.main = main  # type: ignore[attr-defined]
    run_main(module, ["--quick", "--profile"])
    assert seen == [["--quick", "--profile"]]


def test_coroutine_main_is_awaited_without_our_flags() -> None:
    seen: list[list[str]] = []
    module = ModuleType("bench.fake_async")

    async def main() -> None:
        seen.append(list(sys.argv[1:]))

    module.main = main  # type: ignore[attr-defined]
    saved = list(sys.argv)
    run_main(module, ["--quick"])
    assert seen == [[]]
    assert sys.argv == saved


def _module(name: str, main: object) -> ModuleType:
    module = ModuleType(f"bench.{name}")
    module.main = main  # type: ignore[attr-defined]
    return module


def test_a_bench_refusing_a_flag_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bench whose own parser refuses a flag (argparse exits) is reported failed; the
    benches after it still run."""
    ran: list[list[str]] = []

    def strict(argv: list[str]) -> None:
        argparse.ArgumentParser().parse_args(argv)  # knows no --quick

    modules = {"bench.strict": _module("strict", strict),
               "bench.after": _module("after", ran.append)}
    monkeypatch.setattr(dispatch, "ORDER", ("strict", "after"))
    monkeypatch.setattr(dispatch.importlib, "import_module", modules.__getitem__)
    assert dispatch.main(["--quick"]) == 1
    assert ran == [["--quick"]]


def test_a_number_among_the_names_hints_at_the_option_form(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch.main(["handler_cpu", "--rounds", "3"]) == 2
    assert "--rounds=3" in capsys.readouterr().out
