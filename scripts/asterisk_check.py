"""``privnum asterisk check``: does an existing Asterisk configuration hold what privnum needs?

Reads the configuration (pyst2's parser, following ``#include``) and reports one finding per
line: privnum's parts present or not included, name collisions with the PBX's own contexts,
endpoints and AMI users, modules ``modules.conf`` does not load, the system name, the AMI
user's privileges, and where the safety-net CDR CSV is written. It never changes a file.

What privnum needs is taken from the renderer (the contexts, endpoints and mappings
``privnum asterisk render`` writes for these settings), so the check cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agi import channel_vars as cv
from scripts.asterisk_include import Setting, plan
from scripts.asterisk_read import AsteriskConfig
from scripts.asterisk_render import INCLUDE_FILES, REQUIRED_MODULES, RenderOptions
from scripts.asterisk_tree import ConfTree, Section, read_tree

AMI_READ = frozenset({"cdr", "system"})
"""Cdr events for the call log; FullyBooted/Shutdown to notice a restart."""
AMI_WRITE = frozenset({"originate"})
"""Click-to-call."""

_ENDPOINT_TYPES = {"endpoint", "aor", "auth", "identify"}
_DEFAULT_LOG_DIR = "/var/log/asterisk"


@dataclass(frozen=True)
class Finding:
    ok: bool
    topic: str  # include, collision, module, system_name, ami, cdr, read
    message: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'problem'}: {self.message}"


@dataclass(frozen=True)
class Needs:
    """What privnum needs of the configuration, for the settings it runs with."""

    contexts: tuple[str, ...]
    endpoints: tuple[str, ...]  # the PJSIP names privnum's part defines
    dial_endpoint: str  # the endpoint the dial template names ("" when it names none)
    ami_user: str
    ami_secret: str  # empty: not compared
    ami_port: int
    mappings: dict[str, str]
    csv_mapping: str
    system_name: str
    csv_dir: Path
    settings: tuple[Setting, ...] = ()

    @classmethod
    def of(cls, options: RenderOptions, *, csv_dir: Path, ami_secret: str) -> Needs:
        parts = plan(options)
        read = {name: AsteriskConfig(text, name) for name, text in parts.parts.items()}
        pjsip = read[INCLUDE_FILES["pjsip.conf"]]
        endpoints = {str(c.name) for c in pjsip.categories
                     if any(i.name == "type" and str(i.value).strip() in _ENDPOINT_TYPES
                            for i in c.items)}
        custom = read[INCLUDE_FILES["cdr_custom.conf"]]
        return cls(
            contexts=tuple(read[INCLUDE_FILES["extensions.conf"]].section_names),
            endpoints=tuple(sorted(endpoints)),
            # PJSIP/{number}@privnum-trunk: Dial needs that endpoint, privnum's or the PBX's
            dial_endpoint=options.dial_template.partition("@")[2],
            ami_user=options.ami_user, ami_secret=ami_secret, ami_port=options.ami_port,
            mappings=dict(read[INCLUDE_FILES["cdr_manager.conf"]].items("mappings")),
            csv_mapping=custom.values("mappings", cv.CDR_CSV_FILE)[0],
            system_name=options.system_name, csv_dir=csv_dir,
            settings=tuple(s for s in parts.settings if s.key != "systemname"))


def check(etc: Path, needs: Needs) -> list[Finding]:
    """Every finding about the configuration in ``etc``, in a stable order."""
    if not etc.is_dir():
        return [Finding(False, "read", f"{etc}: not a directory")]
    trees = {name: read_tree(etc, name) for name in (
        "asterisk.conf", "modules.conf", "extensions.conf", "pjsip.conf", "manager.conf",
        "cdr.conf", "cdr_manager.conf", "cdr_custom.conf")}
    found: list[Finding] = []
    for tree in trees.values():
        found += [Finding(False, "read", problem) for problem in tree.problems]
    found += _parts(trees, needs)
    found += _collisions(trees, needs)
    found += _modules(trees["modules.conf"])
    found += _system_name(trees["asterisk.conf"], needs)
    found += _settings(trees, needs)
    found += _ami(trees["manager.conf"], needs)
    found += _cdr(trees, needs)
    return found


# ---- privnum's parts present, included ----------------------------------------------------


def _parts(trees: dict[str, ConfTree], needs: Needs) -> list[Finding]:
    mappings = _mappings(trees["cdr_manager.conf"])
    wanted = {
        "extensions.conf": _named("contexts", [
            c for c in needs.contexts if not trees["extensions.conf"].named(c)]),
        "pjsip.conf": _named("endpoint", [
            e for e in (needs.dial_endpoint,) if e and not trees["pjsip.conf"].named(e)]),
        "manager.conf": _named("AMI user", [
            u for u in (needs.ami_user,) if not trees["manager.conf"].named(u)]),
        "cdr_manager.conf": _named("mappings", [
            f"{k} => {v}" for k, v in needs.mappings.items() if v not in mappings.get(k, ())]),
        "cdr_custom.conf": _named("mapping", [
            f for f in (cv.CDR_CSV_FILE,) if not _mappings(trees["cdr_custom.conf"]).get(f)]),
    }
    out: list[Finding] = []
    for top, missing in wanted.items():
        tree, part = trees[top], INCLUDE_FILES[top]
        if not tree.exists:
            continue  # reported as unreadable already
        if not missing:
            how = f"via {part}" if tree.includes(part) else "in it"
            out.append(Finding(True, "include", f"{top}: privnum's part is there ({how})"))
        elif (tree.etc / part).is_file() and not tree.includes(part):
            out.append(Finding(False, "include", f"{top} does not include {part}: add the "
                               f"line '#include {part}' to {top}"))
        else:
            out.append(Finding(False, "include", f"{top} lacks privnum's {missing}: write "
                               f"them with 'privnum asterisk render --mode include' and add "
                               f"'#include {part}' to {top}"))
    return out


def _mappings(tree: ConfTree) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for section in tree.named("mappings"):
        for key, value in section.items:
            out.setdefault(key, []).append(value)
    return out


# ---- collisions ------------------------------------------------------------------------------


def _collisions(trees: dict[str, ConfTree], needs: Needs) -> list[Finding]:
    names = [("extensions.conf", "context", c) for c in needs.contexts]
    names += [("pjsip.conf", "endpoint", e) for e in needs.endpoints]
    names += [("manager.conf", "AMI user", needs.ami_user)]
    out: list[Finding] = []
    for top, kind, name in names:
        sections = trees[top].named(name)
        others = [s for s in sections if not s.by_privnum]
        ours = [s for s in sections if s.by_privnum]
        # PJSIP names an endpoint, its aor, auth and identify alike: one of each is no clash.
        ours_twice = len(ours) != len({_pjsip_type(s) for s in ours})
        if others:
            clash = (f"defined by privnum at {ours[0].where} and by this PBX at "
                     f"{_where(others)}" if ours else
                     f"this PBX defines it at {_where(others)}, privnum's part would clash")
            out.append(Finding(False, "collision", f"{kind} {name}: {clash}: rename the PBX's "
                               "or change privnum's setting"))
        elif ours_twice:
            out.append(Finding(False, "collision", f"{kind} {name}: privnum's definition is "
                               f"read twice ({_where(ours)}): include privnum's part once"))
    if not out:
        out.append(Finding(True, "collision", "no context, endpoint or AMI user of privnum's "
                           "collides with one of this PBX"))
    return out


def _pjsip_type(section: Section) -> str:
    return section.value("type")


def _where(sections: list[Section]) -> str:
    return ", ".join(s.where for s in sections)


# ---- modules ---------------------------------------------------------------------------------


def _modules(tree: ConfTree) -> list[Finding]:
    if not tree.exists:
        return []
    general = tree.named("modules")
    autoload = _true(general[-1].value("autoload", "no")) if general else False
    loaded: set[str] = set()
    refused: set[str] = set()
    for section in general:
        for key, value in section.items:
            module = _module(value)
            if key.lower() in {"load", "preload", "require", "preload-require"}:
                loaded.add(module)
            elif key.lower() == "noload":
                refused.add(module)
    out: list[Finding] = []
    for module in REQUIRED_MODULES:
        if module in refused:
            out.append(Finding(False, "module", f"modules.conf: 'noload => {module}.so' but "
                               "privnum needs it: remove that line"))
        elif not autoload and module not in loaded:
            out.append(Finding(False, "module", f"modules.conf: {module}.so is not loaded "
                               f"(autoload=no): add 'load => {module}.so'"))
    if not out:
        how = "autoload=yes" if autoload else "load => lines"
        out.append(Finding(True, "module", f"modules.conf loads every module privnum needs "
                           f"({how})"))
    return out


def _module(value: str) -> str:
    return value.strip().removesuffix(".so")


def _true(value: str) -> bool:
    return value.strip().lower() in {"yes", "true", "y", "t", "1", "on"}


# ---- system name -----------------------------------------------------------------------------


def _system_name(tree: ConfTree, needs: Needs) -> list[Finding]:
    if not tree.exists:
        return []
    options = tree.named("options")
    asterisk = options[-1].value("systemname") if options else ""
    if asterisk == needs.system_name:
        return [Finding(True, "system_name", f"asterisk.conf systemname is "
                        f"'{asterisk}', as privnum expects (agi.system_name)")]
    fix = (f"set agi.system_name = \"{asterisk}\" (PRIVNUM_AGI__SYSTEM_NAME)" if asterisk
           else f"set systemname = {needs.system_name} in asterisk.conf [options]")
    return [Finding(False, "system_name", f"asterisk.conf systemname is '{asterisk}' but "
                    f"privnum expects '{needs.system_name}' (agi.system_name): {fix}, so "
                    "CDRs join their call attempts")]


# ---- settings privnum needs in the PBX's own files --------------------------------------------


def _settings(trees: dict[str, ConfTree], needs: Needs) -> list[Finding]:
    out: list[Finding] = []
    for wanted in needs.settings:
        tree = trees[wanted.file]
        if not tree.exists:
            continue
        sections = tree.named(wanted.section)
        values = [v for s in sections for v in s.values(wanted.key)]
        have = values[-1] if values else wanted.default()
        same = (_true(have) == _true(wanted.value)) if wanted.value.lower() in {"yes", "no"} \
            else have == wanted.value
        if not same:
            shown = have if values else f"{have}, by default"
            out.append(Finding(False, "setting", f"{wanted.file} [{wanted.section}] "
                               f"{wanted.key} is {shown}: privnum needs {wanted.value}"))
    if not out:
        out.append(Finding(True, "setting", "cdr.conf, cdr_manager.conf and manager.conf have "
                           "the values privnum needs"))
    return out


# ---- AMI -------------------------------------------------------------------------------------


def _ami(tree: ConfTree, needs: Needs) -> list[Finding]:
    users = tree.named(needs.ami_user)
    if not tree.exists or not users:
        return []  # a missing user is reported with privnum's parts
    user = users[-1]
    out: list[Finding] = []
    general = tree.named("general")
    port = general[-1].value("port", "5038") if general else "5038"
    if port.strip() != str(needs.ami_port):
        out.append(Finding(False, "ami", f"manager.conf: AMI listens on port {port} but "
                           f"ami.port is {needs.ami_port}"))
    for key, need in (("read", AMI_READ), ("write", AMI_WRITE)):
        have = {c.strip().lower() for v in user.values(key) for c in v.split(",") if c.strip()}
        wider = sorted(have - need) if "all" not in have else ["all"]
        narrower = sorted(need - have) if "all" not in have else []
        if wider:
            out.append(Finding(False, "ami", f"AMI user {needs.ami_user} ({user.where}): "
                               f"{key}={','.join(sorted(have))} is wider than privnum needs "
                               f"({key}={','.join(sorted(need))}): remove {','.join(wider)}"))
        if narrower:
            out.append(Finding(False, "ami", f"AMI user {needs.ami_user} ({user.where}): "
                               f"{key} lacks {','.join(narrower)} (privnum needs "
                               f"{key}={','.join(sorted(need))})"))
    if needs.ami_secret and user.value("secret") != needs.ami_secret:
        out.append(Finding(False, "ami", f"AMI user {needs.ami_user} ({user.where}): its "
                           "secret is not ami.secret"))
    if not out:
        out.append(Finding(True, "ami", f"AMI user {needs.ami_user}: read="
                           f"{','.join(sorted(AMI_READ))} write={','.join(sorted(AMI_WRITE))}, "
                           "exactly what privnum needs"))
    return out


# ---- CDR -------------------------------------------------------------------------------------


def _cdr(trees: dict[str, ConfTree], needs: Needs) -> list[Finding]:
    out: list[Finding] = []
    custom = _mappings(trees["cdr_custom.conf"]).get(cv.CDR_CSV_FILE, [])
    if custom and custom[-1] != needs.csv_mapping:
        out.append(Finding(False, "cdr", f"cdr_custom.conf: the {cv.CDR_CSV_FILE} columns "
                           "differ from this privnum's: render privnum's part again"))
    log_dir = _log_dir(trees["asterisk.conf"])
    written = PurePosixPath(log_dir) / "cdr-custom" / cv.CDR_CSV_FILE
    read = needs.csv_dir / cv.CDR_CSV_FILE
    if str(written) != str(read):
        out.append(Finding(False, "cdr", f"CDR CSV: Asterisk writes {written} but privnum reads "
                           f"{read} (call_log.cdr_csv_dir): set it to {written.parent} unless "
                           "privnum reads a copy there"))
    else:
        out.append(Finding(True, "cdr", f"CDR CSV: Asterisk writes {written}, where privnum "
                           "reads it"))
    return out


def _log_dir(tree: ConfTree) -> str:
    # A stock asterisk.conf has [directories](!): a template, so the built-in paths apply.
    directories = tree.named("directories")
    return directories[-1].value("astlogdir", _DEFAULT_LOG_DIR) if directories \
        else _DEFAULT_LOG_DIR


def _named(kind: str, items: list[str]) -> str:
    """'' when nothing is missing, else e.g. 'contexts privnum-inbound, privnum-bridge and 5
    more'."""
    if not items:
        return ""
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return f"{kind} {', '.join(items[:3])}{more}"
