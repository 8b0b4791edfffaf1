"""``python -m bench`` dispatch: flags reach modules that take argv; other engineers' scripts
(``main()`` without parameters, possibly a coroutine function) run without our flags."""

from __future__ import annotations

import sys
from types import ModuleType

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
