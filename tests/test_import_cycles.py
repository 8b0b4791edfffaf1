"""Every module can be imported first, on its own (a tool, a worker process or a test may
start from any of them). Python only fails that inside an import cycle, where the module that
comes first decides what the others see half-initialized, so the cycles are found from the
source (module-level imports) and each of their modules is imported first in a fresh
interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agi", "routing", "binding_store", "api", "scripts", "bench")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # run by Alembic, never imported by name
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _module_level_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports run when the module is (not those of functions or ``if TYPE_CHECKING``)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _module_level_imports(node.body)
            yield from _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody,
                          *(handler.body for handler in node.handlers)):
                yield from _module_level_imports(block)


def _runs(name: str) -> list[str]:
    """The modules importing ``name`` executes: its packages, then itself."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: list[str] = []
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif node.level == 0 and node.module:
                targets += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        graph[name] = {m for t in targets for m in _runs(t) if m in modules and m != name}
    return graph


def in_cycles(graph: dict[str, set[str]]) -> list[str]:
    """The modules that reach themselves through their imports."""

    def reached(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += graph[name]
        return seen

    return sorted(name for name in graph if name in reached(name))


_IMPORT_EACH_FIRST = """
import importlib, sys
ours = {packages!r}
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed))
"""


def test_the_graph_sees_a_cycle_through_a_package_init() -> None:
    graph = {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p"}, "q": {"p"}}
    assert in_cycles(graph) == ["p", "p.a", "p.b"]
    assert in_cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_of_an_import_cycle_can_be_imported_first() -> None:
    members = in_cycles(import_graph())
    if not members:
        return  # no cycle: nothing can depend on which module comes first
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FIRST.format(packages=PACKAGES), *members],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", done.stdout
