"""Import directions: routing is pure; agi and api reach the store only through routing; the
use cases (routing/usecases) are called by the front doors and call nothing but routing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"agi", "routing", "binding_store", "api", "scripts", "bench", "asterisk_conf", "tests"}
ALLOWED: dict[str, set[str]] = {
    "routing": set(),
    "binding_store": {"routing"},
    "agi": {"routing"},
    "api": {"routing"},
}
# Third-party packages a pure domain layer must not touch.
ROUTING_FORBIDDEN = {"sqlalchemy", "redis", "panoramisk", "asyncio", "socket", "fastapi",
                     "httpx", "psycopg", "aiosqlite", "cryptography"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, dotted (``from a.b import c`` gives ``a.b`` and
    ``a.b.c``), at any depth (lazy imports inside functions count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_directions(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    for path in files:
        if "migrations" in path.parts:
            continue
        ours = (imported_roots(path) & OURS) - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(ours)}"


def test_routing_is_pure() -> None:
    for path in sorted((ROOT / "routing").rglob("*.py")):
        bad = imported_roots(path) & ROUTING_FORBIDDEN
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def _error_classes() -> set[str]:
    """Names of the exception classes defined in ``routing/errors.py``."""
    tree = ast.parse((ROOT / "routing" / "errors.py").read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


@pytest.mark.parametrize("package", ["routing", "binding_store", "agi", "api", "scripts"])
def test_domain_errors_are_defined_only_in_routing_errors(package: str) -> None:
    """A new domain error extends one of ``routing.errors`` there, not in the module that
    raises it (so every front door maps the same, complete list)."""
    ours = _error_classes()
    for path in sorted((ROOT / package).rglob("*.py")):
        if path == ROOT / "routing" / "errors.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                         for b in node.bases}
                assert not bases & ours, (
                    f"{path.relative_to(ROOT)} defines {node.name} from {sorted(bases & ours)}")


def test_audit_rows_are_written_only_by_binding_store_audit() -> None:
    """One way to write the audit log (``binding_store.audit.record``), so every event gets
    its buyer numbers masked and its kind from ``routing.audit.AuditKind``."""
    for package in ("routing", "binding_store", "agi", "api", "scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "binding_store" / "audit.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    assert name != "AuditEvent", f"{path.relative_to(ROOT)} writes AuditEvent"


USE_CASES = ROOT / "routing" / "usecases"


def _under(path: Path, folder: Path) -> bool:
    return folder in path.parents


@pytest.mark.parametrize("package", ["routing", "binding_store", "agi"])
def test_only_front_doors_call_the_use_cases(package: str) -> None:
    """The domain, the stores and the call path never call a use case (the arrow points from
    the front doors, through the use cases, to routing)."""
    for path in sorted((ROOT / package).rglob("*.py")):
        if _under(path, USE_CASES):
            continue
        called = {m for m in imported_modules(path) if m.startswith("routing.usecases")}
        assert not called, f"{path.relative_to(ROOT)} imports {sorted(called)}"


def test_use_cases_are_pure_orchestration() -> None:
    """Over ports only: no store, no framework, no I/O library, no clock of their own."""
    files = sorted(USE_CASES.rglob("*.py"))
    assert files
    for path in files:
        roots = imported_roots(path)
        assert roots & OURS <= {"routing"}, f"{path.relative_to(ROOT)} imports {roots & OURS}"
        assert not roots & ROUTING_FORBIDDEN
        source = path.read_text(encoding="utf-8")
        assert "datetime.now(" not in source and "time.time(" not in source, path


# What a CLI command may still reach directly: operator maintenance with no rule of its own
# and no other front door (schema migrations, the key file, the call log's chain, the index).
CLI_MAINTENANCE = {"binding_store.migrate", "binding_store.crypto", "binding_store.key_rotation",
                   "binding_store.call_log_audit", "binding_store.index_rebuild",
                   "binding_store.partitions"}


def test_routes_and_cli_commands_only_translate() -> None:
    """HTTP routes and CLI commands reach the stores through the use cases (or, for operator
    maintenance, through the composition root), never by building a repository or SQL."""
    for path in sorted((ROOT / "api").glob("*.py")):
        assert not imported_roots(path) & {"binding_store", "sqlalchemy", "redis"}, path
    for path in sorted((ROOT / "scripts").glob("cli_*.py")):
        stores = {m for m in imported_modules(path) if m.startswith("binding_store.")}
        stores = {m for m in stores if not any(m.startswith(k) for k in CLI_MAINTENANCE)}
        assert not stores, f"{path.relative_to(ROOT)} imports {sorted(stores)}"
        assert "sqlalchemy" not in imported_roots(path), path
