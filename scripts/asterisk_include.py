"""Include mode: privnum's parts of the Asterisk configuration, for a PBX that has its own.

``privnum asterisk render --mode include --out DIR`` writes only privnum's parts, each a file
that one of the PBX's files ``#include``s (the FreePBX ``*_custom.conf`` habit), and says what
else the PBX must set: the ``#include`` lines, a few settings in its own files (``cdr.conf``
must record unanswered calls, ``cdr_manager.conf`` must be on, the system name) and the
modules to load. The parts are cut, section by section, out of the full configuration the same
renderer writes for a fresh box (``--mode full``), so both modes hold the same dialplan,
endpoints, AMI user and CDR mappings. ``privnum asterisk check`` verifies the same plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scripts.asterisk_read import AsteriskConfig
from scripts.asterisk_render import INCLUDE_FILES, REQUIRED_MODULES, RenderOptions, render_text

_HEADER = re.compile(r"^\[([^\]]+)\]\s*(?:;.*)?$")

# What privnum's part of each file leaves to the PBX: its general sections and, unless privnum
# brings its own, PJSIP transports.
_PBX_SECTIONS = {
    "extensions.conf": {"general", "globals"},
    "pjsip.conf": {"global"},
    "manager.conf": {"general"},
    "cdr_manager.conf": {"general"},
    "cdr_custom.conf": set(),
}

# Settings privnum needs in the PBX's own files: (file, section, keys or None for all) of the
# full-mode files, which set them.
_NEEDED_SETTINGS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("asterisk.conf", "options", ("systemname",)),
    ("manager.conf", "general", ("enabled",)),
    ("cdr.conf", "general", None),
    ("cdr_manager.conf", "general", ("enabled",)),
)

ASTERISK_DEFAULTS = {
    ("cdr.conf", "general", "enable"): "yes",
    ("cdr.conf", "general", "safeshutdown"): "yes",
    ("asterisk.conf", "options", "systemname"): "",
}
"""Asterisk's value of a key a file does not set, where it is not "no"."""


@dataclass(frozen=True)
class Include:
    into: str  # the PBX's file, e.g. extensions.conf
    part: str  # privnum's file it includes, e.g. extensions_privnum.conf

    @property
    def line(self) -> str:
        return f"#include {self.part}"


@dataclass(frozen=True)
class Setting:
    file: str
    section: str
    key: str
    value: str

    def default(self) -> str:
        return ASTERISK_DEFAULTS.get((self.file, self.section, self.key), "no")


@dataclass(frozen=True)
class IncludePlan:
    parts: dict[str, str]  # file name -> text
    includes: tuple[Include, ...]
    settings: tuple[Setting, ...]
    modules: tuple[str, ...]  # file names, e.g. res_agi.so

    def instructions(self) -> list[str]:
        """What the admin adds to the PBX's own files, one line each."""
        lines = ["Add to the PBX's own files (in Asterisk's configuration directory):"]
        lines += [f"  {i.into}: {i.line}" for i in self.includes]
        lines.append("Set in them (privnum needs these values):")
        lines += [f"  {s.file} [{s.section}] {s.key} = {s.value}" for s in self.settings]
        lines.append("Modules privnum needs (modules.conf with autoload=no: a 'load =>' line "
                     "each; never 'noload'):")
        lines.append("  " + " ".join(self.modules))
        lines.append("Then: privnum asterisk check, and 'core reload' in the Asterisk CLI.")
        return lines


def plan(options: RenderOptions) -> IncludePlan:
    parts: dict[str, str] = {}
    for top, part in INCLUDE_FILES.items():
        drop = set(_PBX_SECTIONS[top])
        parts[part] = _header(top, part) + _cut(render_text(options, top), drop, top,
                                                keep_transports=options.own_transports)
    settings: list[Setting] = []
    for file, section, keys in _NEEDED_SETTINGS:
        config = AsteriskConfig(render_text(options, file), file)
        settings += [Setting(file, section, key, value) for key, value in config.items(section)
                     if keys is None or key in keys]
    return IncludePlan(parts=parts,
                       includes=tuple(Include(top, part) for top, part in INCLUDE_FILES.items()),
                       settings=tuple(settings),
                       modules=tuple(f"{m}.so" for m in REQUIRED_MODULES))


def write(plan_: IncludePlan, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in plan_.parts.items():
        AsteriskConfig(text, name)  # what Asterisk will read must parse
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        if name == INCLUDE_FILES["manager.conf"]:
            path.chmod(0o640)  # holds the AMI secret
        written.append(path)
    return written


def _header(top: str, part: str) -> str:
    return (f"; privnum's part of {top} (include mode) -- rendered by privnum "
            f"(scripts/asterisk_render.py).\n; The PBX's {top} reads it with the line: "
            f"#include {part}\n")


def _section(line: str) -> str | None:
    header = _HEADER.match(line.strip())
    return header[1] if header else None


def _blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """The text as (section name, lines): comment lines right above a header go with it; the
    lines before the first header are the preamble (name None)."""
    out: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        name = _section(line)
        if name is not None:
            previous = out[-1][1]
            lead: list[str] = []
            while previous and previous[-1].startswith(";"):
                lead.insert(0, previous.pop())
            out.append((name, [*lead, line]))
        else:
            out[-1][1].append(line)
    return out


def _cut(text: str, drop: set[str], top: str, *, keep_transports: bool) -> str:
    kept: list[str] = []
    for name, lines in _blocks(text):
        if name is None:
            kept += [line for line in lines if "rendered by privnum" not in line]
            continue
        kind = next((line.split("=", 1)[1].strip() for line in lines
                     if line.replace(" ", "").startswith("type=")), "")
        if name in drop or (top == "pjsip.conf" and kind == "transport"
                            and not keep_transports):
            continue
        kept += lines
    return "\n".join(kept).strip("\n") + "\n"


# ---- applying a plan (the Asterisk lab does it on a copy of Debian's stock configuration) ----


def apply(plan_: IncludePlan, etc: Path) -> None:
    """Do to the configuration in ``etc`` what :meth:`IncludePlan.instructions` asks of an
    admin: write the parts, add the ``#include`` lines, set the settings, load the modules."""
    write(plan_, etc)
    for setting in plan_.settings:
        path = etc / setting.file
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(set_value(text, setting.section, setting.key, setting.value),
                        encoding="utf-8")
    for include in plan_.includes:  # last: what they include starts sections of its own
        path = etc / include.into
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(text.rstrip("\n") + f"\n\n{include.line}\n", encoding="utf-8")
    modules = etc / "modules.conf"
    config = AsteriskConfig.read(modules)
    autoload = config.values("modules", "autoload")
    if not autoload or autoload[-1].lower() not in {"yes", "true", "1", "on"}:
        text = modules.read_text(encoding="utf-8")
        for module in plan_.modules:
            text = set_value(text, "modules", "load", module, replace=False)
        modules.write_text(text, encoding="utf-8")


def set_value(text: str, section: str, key: str, value: str, *, replace: bool = True) -> str:
    """``text`` with ``key = value`` at the end of its first ``[section]`` (not a template),
    earlier values of ``key`` there removed (``replace``); a missing section is appended."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if _section(line) == section), None)
    if start is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{key} = {value}\n"
    # The section ends at the next header, or at an #include (whose file may open another).
    end = next((n for n in range(start + 1, len(lines))
                if lines[n].lstrip().startswith(("[", "#include", "#tryinclude"))), len(lines))
    own = re.compile(rf"^\s*{re.escape(key)}\s*=>?")
    body = [line for line in lines[start + 1:end] if not (replace and own.match(line))]
    while body and not body[-1].strip():
        body.pop()
    lines[start + 1:end] = [*body, f"{key} = {value}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
