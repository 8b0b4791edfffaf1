"""Where each setting comes from: its default, the TOML file or an environment variable.

Used to name the true source of a bad value, to warn about ``PRIVNUM_*`` variables no setting
reads (a typo such as ``PRIVNUM_AGI__PORTT`` would otherwise be ignored in silence), to refuse
unknown keys in the file, and by ``privnum config show``. Generic over the settings model, so
the names cannot drift from it.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

ENV_PREFIX = "PRIVNUM_"
DELIMITER = "__"

TOOL_VARIABLES = ("PRIVNUM_CONFIG",)
TOOL_PREFIXES = ("PRIVNUM_TEST_", "PRIVNUM_BENCH_", "PRIVNUM_LAB_", "PRIVNUM_VENV",
                 "PRIVNUM_PRIVATE_REDIS_PORTS",
                 "PRIVNUM_RUN_DIR", "PRIVNUM_PYTHON", "PRIVNUM_APT_UPDATED", "PRIVNUM_ROOT")
"""``PRIVNUM_*`` variables that are no setting: the config file's path, and those of the
project's own scripts (tests, benchmarks, the Asterisk lab, the set-up scripts)."""

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Leaf:
    """One setting: its dotted path, and whether any key below it is allowed (a mapping such
    as ``pool.number_classes``, whose keys are region codes)."""

    path: Path_
    open: bool

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def env(self) -> str:
        return env_name(self.path)


def env_name(path: Path_) -> str:
    return ENV_PREFIX + DELIMITER.join(part.upper() for part in path)


def _section(annotation: Any) -> type[BaseModel] | None:
    """The model class of a section field (``DatabaseSettings``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return origin is dict


def leaves(model: type[BaseModel], prefix: Path_ = ()) -> Iterator[Leaf]:
    for name, info in model.model_fields.items():
        section = _section(info.annotation)
        if section is not None:
            yield from leaves(section, (*prefix, name))
        else:
            yield Leaf((*prefix, name), open=_is_mapping(info.annotation))


def unknown_env(model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """One warning line per ``PRIVNUM_*`` variable that no setting reads."""
    known = {leaf.env: leaf for leaf in leaves(model)}
    sections = {env_name(leaf.path[:n]) for leaf in known.values()
                for n in range(1, len(leaf.path))}
    out = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper in sections:
            continue  # a whole section as JSON (PRIVNUM_AGI='{...}') is read too
        if upper in TOOL_VARIABLES or upper.startswith(TOOL_PREFIXES):
            continue
        if any(upper.startswith(env + DELIMITER) for env, leaf in known.items() if leaf.open):
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"environment variable {name} is no setting and is ignored{hint}")
    return out


def unknown_file_keys(model: type[BaseModel], values: Mapping[str, Any]) -> list[str]:
    """Dotted keys in the config file that no setting reads."""
    out: list[str] = []
    _unknown(model, values, (), out)
    return out


def _unknown(model: type[BaseModel], values: Mapping[str, Any], prefix: Path_,
             out: list[str]) -> None:
    fields = model.model_fields
    for key, value in values.items():
        info = fields.get(key)
        if info is None:
            close = difflib.get_close_matches(key, fields, n=1, cutoff=0.75)
            hint = f" (did you mean {'.'.join((*prefix, close[0]))}?)" if close else ""
            out.append(f"{'.'.join((*prefix, key))}{hint}")
            continue
        section = _section(info.annotation)
        if section is not None and isinstance(value, Mapping):
            _unknown(section, value, (*prefix, key), out)


@dataclass(frozen=True)
class Source:
    kind: str  # default, file, env (or given: passed in by code)
    variable: str | None = None  # the environment variable, for env

    def __str__(self) -> str:
        return f"env {self.variable}" if self.variable else self.kind


def source_of(path: Path_, file_values: Mapping[str, Any], environ: Mapping[str, str]
              ) -> Source:
    """Where the value at ``path`` came from: the environment beats the file, which beats the
    default."""
    upper = {k.upper(): k for k in environ}
    for n in range(len(path), 0, -1):  # the setting itself, or its section as JSON
        name = env_name(path[:n])
        if name in upper:
            return Source("env", upper[name])
    below = sorted(k for k in upper if k.startswith(env_name(path) + DELIMITER))
    if below:  # a key of a mapping (PRIVNUM_POOL__NUMBER_CLASSES__CN)
        return Source("env", upper[below[0]])
    node: Any = file_values
    for part in path:
        if not isinstance(node, Mapping):
            break  # the file gave a list or value above this key: the file's
        if part not in node:
            return Source("default")
        node = node[part]
    return Source("file")
