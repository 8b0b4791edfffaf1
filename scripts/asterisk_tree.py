"""An Asterisk configuration file as Asterisk reads it: the file and every file it
``#include``s (paths relative to the configuration directory, wildcards allowed), each parsed
with pyst2's parser (:mod:`scripts.asterisk_read`), sections in the order Asterisk sees them.

Used by ``privnum asterisk check`` to look at an existing ``/etc/asterisk`` without changing it.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing.errors import ConfigurationError
from scripts.asterisk_read import AsteriskConfig, Directive

PRIVNUM_MARK = "rendered by privnum"
"""Every file ``privnum asterisk render`` writes says so in its first lines."""

_MAX_DEPTH = 10  # Asterisk refuses deeper #include chains too (and this stops a loop)


@dataclass(frozen=True)
class Section:
    file: str  # relative to the configuration directory, as a #include names it
    line: int
    name: str
    items: tuple[tuple[str, str], ...]
    options: str  # "!" for a template, "+" to add to an earlier section, template names ...
    by_privnum: bool

    @property
    def is_template(self) -> bool:
        return "!" in self.options.replace(" ", "").split(",")

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def values(self, key: str) -> list[str]:
        return [value for name, value in self.items if name.lower() == key.lower()]

    def value(self, key: str, default: str = "") -> str:
        """The last value of ``key`` (Asterisk's ``ast_variable_retrieve`` takes the last)."""
        found = self.values(key)
        return found[-1] if found else default


@dataclass
class ConfTree:
    """``name`` and what it includes; ``problems`` are one line each (missing file, parse
    error, a missing ``#include`` target)."""

    etc: Path
    name: str
    sections: list[Section] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.files)

    def named(self, name: str) -> list[Section]:
        return [s for s in self.sections if s.name == name and not s.is_template]

    def includes(self, file: str) -> bool:
        return file in self.files


def read_tree(etc: Path, name: str) -> ConfTree:
    tree = ConfTree(etc, name)
    if not (etc / name).is_file():
        tree.problems.append(f"{name}: not found in {etc}")
        return tree
    _read_into(tree, name, depth=0)
    return tree


def _read_into(tree: ConfTree, name: str, depth: int) -> None:
    path = tree.etc / name
    try:
        config = AsteriskConfig.read(path)
    except ConfigurationError as exc:
        tree.problems.append(str(exc).replace(str(tree.etc) + "/", ""))
        return
    tree.files.append(name)
    head = "".join(_first_lines(path, 5))
    mine = PRIVNUM_MARK in head
    # Asterisk splices an included file in where the #include line stands.
    events: list[tuple[int, Any]] = [(int(c.number), c) for c in config.categories]
    events += [(d.line, d) for d in config.directives]
    for _line, event in sorted(events, key=lambda e: e[0]):
        if isinstance(event, Directive):
            _follow(tree, name, event, depth)
            continue
        tree.sections.append(Section(
            file=name, line=int(event.number), name=str(event.name),
            items=tuple((str(i.name), str(i.value).strip()) for i in event.items),
            options=config.options.get(str(event.name), ""), by_privnum=mine))


def _follow(tree: ConfTree, parent: str, directive: Directive, depth: int) -> None:
    line, kind, argument = directive.line, directive.kind, directive.argument
    if kind == "exec":
        return  # a command's output: nothing to read without running it
    if depth >= _MAX_DEPTH:
        tree.problems.append(f"{parent}:{line}: #include nested deeper than {_MAX_DEPTH}")
        return
    target = Path(argument)
    pattern = str(target if target.is_absolute() else tree.etc / target)
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
        [pattern] if Path(pattern).is_file() else [])
    if not matches:
        if kind == "include":
            tree.problems.append(f"{parent}:{line}: #include {argument}: no such file "
                                 "(Asterisk will not load this configuration)")
        return
    for match in matches:
        relative = _relative(Path(match), tree.etc)
        if relative in tree.files:
            continue  # included twice (or a loop): Asterisk reads it again, we need not
        _read_into(tree, relative, depth + 1)


def _relative(path: Path, etc: Path) -> str:
    try:
        return str(path.relative_to(etc))
    except ValueError:
        return str(path)


def _first_lines(path: Path, count: int) -> list[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        return [handle.readline() for _ in range(count)]
