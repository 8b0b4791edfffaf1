"""Read Asterisk configuration files with pyst2's parser (``asterisk.config``).

pyst2's config reader is the natural one for ``*.conf`` files: sections (``[name]``) of
``name = value`` / ``name => value`` items, ``;`` comments, line numbers kept. Two things it
does not do are done here, before its parser runs, so that a real ``/etc/asterisk`` reads too:

* ``#include``/``#tryinclude``/``#exec`` lines are collected in :attr:`AsteriskConfig.directives`
  (pyst2 would refuse them as items without ``=``);
* section headers with template options (``[name](!)``, ``[name](tpl1,tpl2)``) keep their name,
  the options go to :attr:`AsteriskConfig.options`;
* block comments (``;--`` ... ``--;``) become comment lines.

Its file handling is not used (it opens without an encoding and never closes): text is read
here and handed to its ``parse``. Its AGI layer is not used either, for the reasons in
``agi/script_mode.py``. A file pyst2 cannot parse is one :class:`ConfigurationError` line
naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asterisk.config import Config, ParseError

from routing.errors import ConfigurationError

_DIRECTIVE = re.compile(r"^\s*#(include|tryinclude|exec)\b\s*(.*?)\s*$")
_TEMPLATE_HEADER = re.compile(r"^(\s*\[[^\]]+\])\s*\(([^)]*)\)(.*)$")


@dataclass(frozen=True)
class Directive:
    line: int
    kind: str  # include, tryinclude or exec
    argument: str


@dataclass(frozen=True)
class DialplanStep:
    """One ``exten =>``/``same =>`` line of a dialplan context."""

    line: int
    exten: str  # the pattern; for ``same`` the one of the ``exten`` it continues
    priority: str  # "1", "n", "n(label)" ...
    app: str
    data: str

    @property
    def label(self) -> str:
        found = re.search(r"\(([^)]*)\)", self.priority)
        return found[1] if found else ""


class AsteriskConfig(Config):  # type: ignore[misc]  # pyst2 ships no type hints
    def __init__(self, text: str, name: str = "<text>") -> None:
        # Not Config.__init__: it opens ``name`` itself.
        self.filename = name
        self.lines: list[Any] = []
        self.categories: list[Any] = []
        self.directives: list[Directive] = []
        self.options: dict[str, str] = {}
        self._in_block_comment = False
        self.raw_lines = [self._prepare(number, raw)
                          for number, raw in enumerate(text.splitlines(), start=1)]
        try:
            self.parse()
        except ParseError as exc:
            line, message = (*exc.args, "", "")[:2]
            raise ConfigurationError(f"{name}:{line}: {message}") from None

    @classmethod
    def read(cls, path: Path) -> AsteriskConfig:
        try:
            # Asterisk reads bytes; a stray Latin-1 byte in a comment must not stop a check.
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc}") from None
        return cls(text, str(path))

    def _prepare(self, number: int, raw: str) -> str:
        if self._in_block_comment:
            self._in_block_comment = "--;" not in raw
            return ";" + raw
        if raw.lstrip().startswith(";--"):
            self._in_block_comment = "--;" not in raw.lstrip()[3:]
            return ";" + raw
        directive = _DIRECTIVE.match(raw)
        if directive:
            self.directives.append(Directive(number, directive[1], directive[2].strip('"')))
            return ";" + raw  # a comment for pyst2, so line numbers stay true
        header = _TEMPLATE_HEADER.match(raw)
        if header:
            self.options[header[1].strip()[1:-1]] = header[2].strip()
            return header[1] + header[3]
        return raw

    # ---- reading ------------------------------------------------------------------------

    @property
    def section_names(self) -> list[str]:
        return [str(c.name) for c in self.categories]

    def items(self, section: str) -> list[tuple[str, str]]:
        """(name, value) of every item of every section called ``section``, in file order
        (Asterisk allows a section to appear more than once)."""
        out: list[tuple[str, str]] = []
        for category in self.categories:
            if category.name == section:
                out.extend((str(i.name), str(i.value).strip()) for i in category.items)
        if not out and section not in self.section_names:
            raise KeyError(section)
        return out

    def values(self, section: str, name: str) -> list[str]:
        return [value for key, value in self.items(section) if key == name]

    def dialplan(self, context: str) -> list[DialplanStep]:
        """The steps of an ``extensions.conf`` context, ``same`` lines resolved to their
        extension."""
        steps: list[DialplanStep] = []
        exten = ""
        for category in self.categories:
            if category.name != context:
                continue
            for item in category.items:
                value = str(item.value).strip()
                if item.name == "exten":
                    exten, _, value = value.partition(",")
                elif item.name != "same":
                    continue
                priority, _, call = value.partition(",")
                app, _, data = call.partition("(")
                steps.append(DialplanStep(line=int(item.number), exten=exten,
                                          priority=priority.strip(), app=app.strip(),
                                          data=data[:-1] if data.endswith(")") else data))
        return steps
